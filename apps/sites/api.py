from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit import services as audit
from apps.core.schema import error_responses, ok
from apps.core.serializers import ResourceResetResponseSerializer
from apps.sites import services
from apps.sites.filters import SiteFilter
from apps.sites.selectors import sites_with_primary_environment
from apps.sites.serializers import SiteSerializer


class SiteListView(generics.ListAPIView):
    serializer_class = SiteSerializer
    filterset_class = SiteFilter

    def get_queryset(self):
        return sites_with_primary_environment().order_by("slug")

    @extend_schema(operation_id="listSites", tags=["Sites"], summary="List sites",
                   responses={200: ok(SiteSerializer(many=True), "All sites, filtered and paged."), **error_responses(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SiteDetailView(generics.RetrieveAPIView):
    serializer_class = SiteSerializer
    lookup_url_kwarg = "id"

    def get_queryset(self):
        return sites_with_primary_environment()

    @extend_schema(operation_id="getSite", tags=["Sites"], summary="Get one site",
                   responses={200: ok(SiteSerializer, "The site."), **error_responses(401, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SiteResetView(APIView):
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
