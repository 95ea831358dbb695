from drf_spectacular.utils import extend_schema, extend_schema_view

from apps.accounts.permissions import needs
from apps.backups.filters import BackupFilter
from apps.backups.models import Backup
from apps.backups.serializers import BackupSerializer
from apps.core.api_views import ChildListView
from apps.core.schema import error_responses, ok
from apps.environments.models import Environment


@extend_schema_view(get=extend_schema(
    operation_id="listEnvironmentBackups", tags=["Backups"], summary="List an environment's backups",
    responses={200: ok(BackupSerializer(many=True), "The environment's backups, newest first."), **error_responses(401, 404)},
))
class EnvironmentBackupListView(ChildListView):
    """An environment's backups, newest first: what each holds (scope), where it is stored, its checksum and size, and until when it is kept."""

    required_permissions = {"GET": needs("backups.view_backup")}
    queryset = Backup.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = BackupSerializer
    filterset_class = BackupFilter
    parent_model = Environment
    parent_field = "environment"
    ordering = ("-created_at",)
