from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics

from apps.accounts.permissions import needs
from apps.core.schema import error_responses, ok
from apps.domains.filters import DomainFilter
from apps.domains.models import Domain
from apps.domains.serializers import DomainSerializer
from apps.environments.models import Environment


@extend_schema_view(get=extend_schema(
    operation_id="listEnvironmentDomains", tags=["Domains"], summary="List an environment's domains",
    responses={200: ok(DomainSerializer(many=True), "The environment's domains."), **error_responses(401, 404)},
))
class EnvironmentDomainListView(generics.ListAPIView):
    required_permissions = {"GET": needs("domains.view_domain")}
    queryset = Domain.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = DomainSerializer
    filterset_class = DomainFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        environment = get_object_or_404(Environment, pk=self.kwargs["id"])
        return Domain.objects.filter(environment=environment).order_by("hostname")
