from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import needs
from apps.audit import services as audit
from apps.core import panel_settings
from apps.core.errors import ApiError
from apps.core.schema import error_responses, ok
from apps.core.serializers import PanelSettingsSerializer, PanelSettingsUpdateSerializer
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


class PanelSettingsView(APIView):
    required_permissions = {
        "GET": needs("core.view_panelsettings"),
        "PATCH": needs("core.change_panelsettings"),
    }

    @extend_schema(operation_id="getSettings", tags=["Settings"], summary="The panel's settings",
                   description="Secrets (DNS-01 credentials, backup storage keys) are never shown: "
                               "`<name>_set` says whether one is stored.",
                   responses={200: ok(PanelSettingsSerializer, "The settings."), **error_responses(401)})
    def get(self, request):
        return Response(PanelSettingsSerializer(panel_settings.current()).data)

    @extend_schema(operation_id="updateSettings", tags=["Settings"], summary="Change the panel's settings",
                   description="Only the settings given change; an empty string clears one. Every value is "
                               "checked before any is stored. The audit entry names the settings changed, "
                               "never their values. A changed `control_plane_domain` queues job `panel_https` "
                               "(the panel served over HTTPS on it by its own machine's Nginx; "
                               "`control_plane_https` follows it).",
                   request=PanelSettingsUpdateSerializer,
                   responses={200: ok(PanelSettingsSerializer, "The settings now."), **error_responses(400, 401)})
    def patch(self, request):
        audit.annotate(request, action="panelsettings.update", resource_type="panelsettings", resource_id="1")
        body = PanelSettingsUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not body.validated_data:
            raise ApiError("bad_request", "Give at least one setting.")
        changed = panel_settings.update(body.validated_data)
        audit.annotate(request, details={"changed": changed})
        return Response(PanelSettingsSerializer(panel_settings.current()).data)
