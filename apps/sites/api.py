from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import MANAGE_PRODUCTION, needs
from apps.audit import services as audit
from apps.core.api_views import job_accepted
from apps.core.query_params import boolean_param
from apps.core.schema import error_responses, ok
from apps.core.errors import ApiError
from apps.core.serializers import JobResponseSerializer, ResourceResetResponseSerializer
from apps.nodes.models import Node
from apps.sites import services
from apps.sites.filters import SiteFilter
from apps.sites.selectors import sites_with_primary_environment
from apps.sites.serializers import CreateSiteSerializer, SiteSerializer

FINAL_BACKUP_PARAMETER = OpenApiParameter(
    "final_backup", bool, OpenApiParameter.QUERY, required=False, default=True,
    description="Take a full final backup of every environment of the site first, kept for its retention (default). `false` opts out. "
    "Without backup storage configured the deletion goes ahead without one and its job log says so.",
)



@extend_schema_view(get=extend_schema(
    operation_id="listSites", tags=["Sites"], summary="List sites",
    responses={200: ok(SiteSerializer(many=True), "All sites, filtered and paged."), **error_responses(401)},
))
class SiteListView(generics.ListAPIView):
    required_permissions = {"GET": needs("sites.view_site"), "POST": needs("sites.add_site")}
    serializer_class = SiteSerializer
    filterset_class = SiteFilter

    def get_queryset(self):
        return sites_with_primary_environment().order_by("slug")

    @extend_schema(
        operation_id="createSite",
        tags=["Sites"],
        summary="Create a site",
        description=(
            "Creates the site and its production environment on a node and queues `site_create`: "
            "a Linux user, PHP-FPM pool, database, WordPress installed and served at the preview URL. "
            "Follow the job for progress."
        ),
        request=CreateSiteSerializer,
        responses={202: ok(JobResponseSerializer, "Site creation queued."), **error_responses(400, 401, 409)},
    )
    def post(self, request):
        body = CreateSiteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        node = None
        if data.get("node_id"):
            node = Node.objects.filter(pk=data["node_id"]).first()
            if node is None:
                raise ApiError("bad_request", "No node with this id.", {"fields": {"node_id": ["unknown node"]}})
        audit.annotate(request, action="site.create", resource_type="site")
        job = services.create_site(name=data["name"], slug=data["slug"], node=node, user=request.user)
        return job_accepted(request, job, resource_id=job.site_id)


@extend_schema_view(get=extend_schema(
    operation_id="getSite", tags=["Sites"], summary="Get one site",
    responses={200: ok(SiteSerializer, "The site."), **error_responses(401, 404)},
))
class SiteDetailView(generics.RetrieveDestroyAPIView):
    # Deleting a site deletes its production environment.
    required_permissions = {"GET": needs("sites.view_site"), "DELETE": needs("sites.delete_site", MANAGE_PRODUCTION)}
    serializer_class = SiteSerializer
    lookup_url_kwarg = "id"

    def get_queryset(self):
        return sites_with_primary_environment()

    @extend_schema(
        operation_id="deleteSite",
        tags=["Sites"],
        summary="Delete a site",
        description="Queues `site_delete`: every environment is removed from its node, then the records. "
        "Refused while a job is queued or running on the site.",
        parameters=[FINAL_BACKUP_PARAMETER],
        responses={202: ok(JobResponseSerializer, "Deletion queued."), **error_responses(400, 401, 404, 409)},
    )
    def delete(self, request, id):
        audit.annotate(request, action="site.delete", resource_type="site", resource_id=id)
        final_backup = boolean_param(request, "final_backup", True)
        job = services.delete_site(id, user=request.user, final_backup=final_backup)
        return job_accepted(request, job)


class SiteResetView(APIView):
    required_permissions = {"POST": needs("sites.change_site")}

    @extend_schema(
        operation_id="resetSiteFailedState",
        tags=["Sites"],
        summary="Reset a failed site to active",
        description="Allowed only from `failed`, and only when no job is queued or running on the site.",
        request=None,
        responses={200: ok(ResourceResetResponseSerializer, "The resource is active again."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="site.reset", resource_type="site", resource_id=id)
        site = services.reset_site(id)
        return Response({"success": True, "status": site.status})
