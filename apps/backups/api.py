from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view

from apps.accounts.permissions import needs
from apps.audit import services as audit
from apps.backups.filters import BackupFilter
from apps.backups.models import Backup
from apps.backups import services
from apps.backups.serializers import BackupSerializer, CreateBackupSerializer
from apps.core.api_views import ChildListView, job_accepted
from apps.core.schema import error_responses, ok
from apps.core.serializers import JobResponseSerializer
from apps.environments.models import Environment


@extend_schema_view(get=extend_schema(
    operation_id="listEnvironmentBackups", tags=["Backups"], summary="List an environment's backups",
    responses={200: ok(BackupSerializer(many=True), "The environment's backups, newest first."), **error_responses(401, 404)},
))
class EnvironmentBackupListView(ChildListView):
    """An environment's backups, newest first: what each holds (scope), where it is stored, its checksum and size, and until when it is kept."""

    required_permissions = {"GET": needs("backups.view_backup"),
                            "POST": needs("backups.add_backup", production_guard=True)}
    queryset = Backup.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = BackupSerializer
    filterset_class = BackupFilter
    parent_model = Environment
    parent_field = "environment"
    ordering = ("-created_at",)

    @extend_schema(
        operation_id="createEnvironmentBackup",
        tags=["Backups"],
        summary="Back an environment up",
        description=(
            "Queues `backup_create`: the database (`db`), the files - current release, `wp-config.php` and "
            "uploads, without caches - (`files`) or both (`full`) are streamed on the node into the site's "
            "restic repository in the configured S3-compatible storage; the new backup is listed at once as "
            "`pending`. Without backup storage configured: 409 `backup_storage_not_configured`."
        ),
        request=CreateBackupSerializer,
        responses={202: ok(JobResponseSerializer, "Backup queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.backup", resource_type="environment", resource_id=id)
        get_object_or_404(Environment, pk=id)  # 404 before validating the body
        body = CreateBackupSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.request_backup(id, body.validated_data["backup_scope"], user=request.user)
        return job_accepted(request, job)
