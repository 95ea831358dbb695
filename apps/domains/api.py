from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.views import APIView

from apps.accounts.permissions import needs, require_for_environment
from apps.audit import services as audit
from apps.core.api_views import ChildListView, job_accepted
from apps.core.errors import ApiError
from apps.core.schema import error_responses, ok
from apps.core.serializers import JobResponseSerializer
from apps.domains import services
from apps.domains.filters import DomainFilter
from apps.domains.models import Domain
from apps.domains.serializers import AddDomainSerializer, DomainSerializer, UpdateDomainSerializer
from apps.environments.models import Environment


@extend_schema_view(get=extend_schema(
    operation_id="listEnvironmentDomains", tags=["Domains"], summary="List an environment's domains",
    responses={200: ok(DomainSerializer(many=True), "The environment's domains."), **error_responses(401, 404)},
))
class EnvironmentDomainListView(ChildListView):
    """An environment's domains: each hostname, whether it is the primary one, and the state of its certificate."""

    required_permissions = {"GET": needs("domains.view_domain"),
                            "POST": needs("domains.add_domain", production_guard=True)}
    queryset = Domain.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = DomainSerializer
    filterset_class = DomainFilter
    parent_model = Environment
    parent_field = "environment"
    ordering = ("hostname",)

    @extend_schema(
        operation_id="addEnvironmentDomain",
        tags=["Domains"],
        summary="Attach a custom domain",
        description=(
            "Queues `domain_add`: the hostname's A record must point at the node's public address (checked "
            "first; otherwise the job fails with `dns_not_pointing`, naming the record to create, and nothing is "
            "written), then its server block, a certificate by HTTP-01 from the configured ACME server, HTTPS "
            "with HTTP redirected. The environment's first domain with a certificate becomes primary: the "
            "site's URLs are rewritten to it and the others answer 301 to it. `check_dns: false` attaches the "
            "domain before DNS is moved; its certificate is asked for once DNS points at the node."
        ),
        request=AddDomainSerializer,
        responses={202: ok(JobResponseSerializer, "Domain queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.domain_add", resource_type="environment", resource_id=id)
        get_object_or_404(Environment, pk=id)  # 404 before validating the body
        body = AddDomainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.request_add(id, body.validated_data["hostname"], check_dns=body.validated_data["check_dns"],
                                   user=request.user)
        return job_accepted(request, job, details={"hostname": job.payload["hostname"]})


class DomainDetailView(APIView):
    required_permissions = {"DELETE": needs("domains.delete_domain"), "PATCH": needs("domains.change_domain")}

    def _domain(self, request, id) -> Domain:
        domain = get_object_or_404(Domain.objects.select_related("environment__site"), pk=id)
        require_for_environment(request.user, domain.environment)
        return domain

    @extend_schema(
        operation_id="deleteDomain",
        tags=["Domains"],
        summary="Remove a custom domain",
        description="Queues `domain_remove`: its server block and certificate are removed from the node; if it was "
                    "primary, the site's URLs are rewritten to the next domain with a certificate, or the preview URL.",
        responses={202: ok(JobResponseSerializer, "Removal queued."), **error_responses(401, 404, 409)},
    )
    def delete(self, request, id):
        audit.annotate(request, action="domain.remove", resource_type="domain", resource_id=id)
        self._domain(request, id)
        return job_accepted(request, services.request_remove(id, user=request.user))

    @extend_schema(
        operation_id="updateDomain",
        tags=["Domains"],
        summary="Make a domain the primary one",
        description="Queues `domain_primary`: the site's URLs are rewritten from the current canonical URL to "
                    "this domain's, caches purged; the other domains answer 301 to it. Only `is_primary: true`; "
                    "409 `domain_not_ready` while the domain has no certificate.",
        request=UpdateDomainSerializer,
        responses={202: ok(JobResponseSerializer, "Change queued."), **error_responses(400, 401, 404, 409)},
    )
    def patch(self, request, id):
        audit.annotate(request, action="domain.make_primary", resource_type="domain", resource_id=id)
        self._domain(request, id)
        body = UpdateDomainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not body.validated_data["is_primary"]:
            raise ApiError("bad_request", "Only is_primary: true is accepted: make another domain primary instead.",
                           {"fields": {"is_primary": ["must be true"]}})
        return job_accepted(request, services.request_primary(id, user=request.user))
