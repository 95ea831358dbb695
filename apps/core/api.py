from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import needs
from apps.core.schema import error_responses, ok
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.nodes.choices import NodeStatus
from apps.nodes.models import Node
from apps.sites.models import Site


class MetricsResponseSerializer(serializers.Serializer):
    jobs_running = serializers.IntegerField(min_value=0)
    jobs_queued = serializers.IntegerField(min_value=0)
    nodes_active = serializers.IntegerField(min_value=0)
    sites_total = serializers.IntegerField(min_value=0)


class MetricsView(APIView):
    required_permissions = {"GET": needs("jobs.view_job", "nodes.view_node", "sites.view_site")}

    @extend_schema(operation_id="getMetrics", tags=["Metrics"], summary="Counts of jobs, nodes and sites right now",
                   responses={200: ok(MetricsResponseSerializer, "Current counts."), **error_responses(401)})
    def get(self, request):
        counts = dict(
            Job.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.QUEUED])
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        return Response(
            {
                "jobs_running": counts.get(JobStatus.RUNNING, 0),
                "jobs_queued": counts.get(JobStatus.QUEUED, 0),
                "nodes_active": Node.objects.filter(status=NodeStatus.ACTIVE).count(),
                "sites_total": Site.objects.count(),
            }
        )
