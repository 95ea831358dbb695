from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import needs
from apps.audit import services as audit
from apps.core.query_params import integer_param
from apps.core.api_views import job_accepted
from apps.core.schema import error_responses, ok
from apps.core.serializers import JobResponseSerializer
from apps.jobs import services
from apps.jobs.filters import JobFilter
from apps.jobs.models import Job, JobLogLine
from apps.jobs.serializers import JobControlResponseSerializer, JobLogLineSerializer, JobStatusResponseSerializer


@extend_schema_view(get=extend_schema(
    operation_id="listJobs", tags=["Jobs"], summary="List jobs, newest first",
    responses={200: ok(JobStatusResponseSerializer(many=True), "Jobs, newest first."), **error_responses(401)},
))
class JobListView(generics.ListAPIView):
    required_permissions = {"GET": needs("jobs.view_job")}
    serializer_class = JobStatusResponseSerializer
    filterset_class = JobFilter
    queryset = Job.objects.order_by("-created_at")


@extend_schema_view(get=extend_schema(
    operation_id="getJob", tags=["Jobs"], summary="Get one job",
    responses={200: ok(JobStatusResponseSerializer, "The job."), **error_responses(401, 404)},
))
class JobDetailView(generics.RetrieveAPIView):
    required_permissions = {"GET": needs("jobs.view_job")}
    serializer_class = JobStatusResponseSerializer
    queryset = Job.objects.all()
    lookup_url_kwarg = "id"


class JobCancelView(APIView):
    # Cancelling or re-running any job (a production deploy, a node's provisioning)
    # is an operator's call: jobs.change_job, which only Operators have.
    required_permissions = {"POST": needs("jobs.change_job")}

    @extend_schema(
        operation_id="cancelJob",
        tags=["Jobs"],
        summary="Cancel a queued or running job",
        description=(
            "A queued job is cancelled at once (`status: cancelled`). A running job is asked to stop "
            "(`status: running`); its handler stops at the next safe point and the job ends `cancelled`."
        ),
        request=None,
        responses={200: ok(JobControlResponseSerializer, "Cancelled, or asked to stop."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="job.cancel", resource_type="job", resource_id=id)
        job = services.cancel_job(id, user=request.user)
        return Response({"success": True, "status": job.status})


@extend_schema_view(get=extend_schema(
    operation_id="getJobLog",
    tags=["Jobs"],
    summary="Read a job's log lines",
    parameters=[OpenApiParameter("after", int, description="Only lines with a larger seq (for tailing).")],
    responses={200: ok(JobLogLineSerializer(many=True), "Log lines in order."), **error_responses(401, 404)},
))
class JobLogView(generics.ListAPIView):
    """The job's log lines in order; poll with ``?after=<last seq>`` to tail it."""

    required_permissions = {"GET": needs("jobs.view_job")}
    serializer_class = JobLogLineSerializer
    queryset = JobLogLine.objects.none()  # for schema generation; get_queryset scopes it
    pagination_class = None
    max_lines = 1000

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        job = get_object_or_404(Job, pk=self.kwargs["id"])
        # Any integer: beyond the last line (or before the first) is a position too.
        after = integer_param(self.request, "after", 0)
        return JobLogLine.objects.filter(job=job, seq__gt=after).order_by("seq")[: self.max_lines]


class JobRetryView(APIView):
    required_permissions = {"POST": needs("jobs.change_job")}

    @extend_schema(
        operation_id="retryJob",
        tags=["Jobs"],
        summary="Run a failed job again",
        description=(
            "Queues a new run of a failed or cancelled job with the same parameters; handlers are idempotent, "
            "so it finishes what the failed run left. Reset a failed site or environment first."
        ),
        request=None,
        responses={202: ok(JobResponseSerializer, "The new run is queued."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        job = services.retry_job(id, user=request.user)
        return job_accepted(request, job, action="job.retry", resource_type="job", resource_id=id)
