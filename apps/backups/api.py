from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics

from apps.accounts.permissions import needs
from apps.backups.filters import BackupFilter
from apps.backups.models import Backup
from apps.backups.serializers import BackupSerializer
from apps.core.schema import error_responses, ok
from apps.environments.models import Environment


@extend_schema_view(get=extend_schema(
    operation_id="listEnvironmentBackups", tags=["Backups"], summary="List an environment's backups",
    responses={200: ok(BackupSerializer(many=True), "The environment's backups, newest first."), **error_responses(401, 404)},
))
class EnvironmentBackupListView(generics.ListAPIView):
    required_permissions = {"GET": needs("backups.view_backup")}
    queryset = Backup.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = BackupSerializer
    filterset_class = BackupFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        environment = get_object_or_404(Environment, pk=self.kwargs["id"])
        return Backup.objects.filter(environment=environment).order_by("-created_at")
