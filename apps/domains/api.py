from drf_spectacular.utils import extend_schema, extend_schema_view

from apps.accounts.permissions import needs
from apps.core.api_views import ChildListView
from apps.core.schema import error_responses, ok
from apps.domains.filters import DomainFilter
from apps.domains.models import Domain
from apps.domains.serializers import DomainSerializer
from apps.environments.models import Environment


@extend_schema_view(get=extend_schema(
    operation_id="listEnvironmentDomains", tags=["Domains"], summary="List an environment's domains",
    responses={200: ok(DomainSerializer(many=True), "The environment's domains."), **error_responses(401, 404)},
))
class EnvironmentDomainListView(ChildListView):
    """An environment's domains: each hostname, whether it is the primary one, and the state of its certificate."""

    required_permissions = {"GET": needs("domains.view_domain")}
    queryset = Domain.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = DomainSerializer
    filterset_class = DomainFilter
    parent_model = Environment
    parent_field = "environment"
    ordering = ("hostname",)
