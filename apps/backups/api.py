from datetime import time

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import needs
from apps.audit import services as audit
from apps.backups.filters import AllBackupsFilter, BackupFilter
from apps.backups.models import Backup
from apps.backups import schedules, services
from apps.backups.serializers import (
    BackupDetailSerializer,
    BackupScheduleSerializer,
    BackupSerializer,
    CreateBackupSerializer,
    RestoreAsCloneSerializer,
    RestoreSerializer,
    UpdateBackupScheduleSerializer,
)
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


@extend_schema_view(get=extend_schema(
    operation_id="listBackups", tags=["Backups"], summary="List backups, with why failed ones failed",
    description="Every backup (of deleted environments and sites too), newest first, as the environment's list "
                "shows them plus `site_id`, `reason`, `job_id`, and for a failed backup `error_code` and "
                "`error_message`. Filter by `site`, `environment`, `status`, `backup_scope`.",
    responses={200: ok(BackupDetailSerializer(many=True), "Backups, newest first."), **error_responses(400, 401)},
))
class BackupListView(generics.ListAPIView):
    required_permissions = {"GET": needs("backups.view_backup")}
    serializer_class = BackupDetailSerializer
    filterset_class = AllBackupsFilter
    queryset = Backup.objects.order_by("-created_at")


@extend_schema_view(get=extend_schema(
    operation_id="getBackup", tags=["Backups"], summary="Get one backup, with why it failed",
    description="The backup as the environment's list shows it, plus `site_id`, `reason`, `job_id`, and for a "
                "failed backup `error_code` (a job error code) and `error_message` (one line).",
    responses={200: ok(BackupDetailSerializer, "The backup."), **error_responses(401, 404)},
))
class BackupDetailView(generics.RetrieveAPIView):
    required_permissions = {"GET": needs("backups.view_backup")}
    serializer_class = BackupDetailSerializer
    queryset = Backup.objects.all()
    lookup_url_kwarg = "id"


class EnvironmentRestoreView(APIView):
    required_permissions = {"POST": needs("environments.restore_environment", production_guard=True)}

    @extend_schema(
        operation_id="restoreEnvironment",
        tags=["Environments"],
        summary="Restore environment",
        description=(
            "Queues `env_restore` of a completed backup of the same site (taken of this or another of its "
            "environments): the backup is read back and checked against its recorded checksum before anything "
            "changes, a full pre-restore backup is taken, then the files (a new release, so the old one stays for "
            "rollback, and the uploads) and/or the database (loaded into a fresh database, then swapped in) are "
            "put back per the backup's scope; URLs are rewritten when the backup came from another environment; "
            "caches are purged and the health checked. On a failure or an unhealthy result the previous release, "
            "uploads and database are put back and the job log says why. Refused with nothing queued: a backup "
            "of another site (409 `backup_of_another_site`), not completed (409 `backup_not_restorable`), no "
            "backup storage (409 `backup_storage_not_configured`), an environment that is not active (409 "
            "`environment_not_active`)."
        ),
        request=RestoreSerializer,
        responses={202: ok(JobResponseSerializer, "Restore queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.restore", resource_type="environment", resource_id=id)
        get_object_or_404(Environment, pk=id)  # 404 before validating the body
        body = RestoreSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.request_restore(id, body.validated_data["backup_id"], user=request.user)
        return job_accepted(request, job)


class BackupRestoreAsCloneView(APIView):
    # A new clone environment: production is only read (copied), as when a clone is created.
    required_permissions = {"POST": needs("environments.add_environment", "environments.restore_environment")}

    @extend_schema(
        operation_id="restoreBackupAsClone",
        tags=["Backups"],
        summary="Restore a backup as a new clone environment",
        description=(
            "A new `clone` environment of the backup's site, with the backup restored into it: `env_create` copies "
            "the backup's environment (or production), then `env_restore` puts the backup in (checked against its "
            "checksum, URLs rewritten to the clone's preview URL). Production and every other environment are "
            "untouched - the safe way to look at last week's site. The answer names the restore job and the new "
            "environment. Refused like `POST /environments/{id}/restore`; a slug the site has already: 409 `conflict`."
        ),
        request=RestoreAsCloneSerializer,
        responses={202: ok(JobResponseSerializer, "Clone creation and restore queued."),
                   **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="backup.restore_as_clone", resource_type="backup", resource_id=id)
        get_object_or_404(Backup, pk=id)
        body = RestoreAsCloneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.request_restore_as_clone(id, user=request.user, **body.validated_data)
        return job_accepted(request, job, resource_id=job.environment_id)


def schedule_body(environment) -> dict:
    schedule = schedules.effective(environment)
    last = schedules.last_scheduled_backup(environment)
    return {
        "environment_id": environment.pk,
        "enabled": schedule.enabled,
        "backup_scope": schedule.backup_scope,
        "window_start": schedule.window_start.strftime("%H:%M"),
        "window_hours": schedule.window_hours,
        "retention_days": schedule.retention_days,
        "is_default": schedule.pk is None or schedule._state.adding,
        "state_version": schedule.state_version,
        "next_window_start": schedules.next_window_start(schedule, timezone.now()) if schedule.enabled else None,
        "last_scheduled_backup_at": last.created_at if last else None,
    }


class EnvironmentBackupScheduleView(APIView):
    """An environment's daily backup: its window (UTC) and how long its backups are kept."""

    required_permissions = {"GET": needs("backups.view_backupschedule"),
                            "PUT": needs("backups.change_backupschedule", production_guard=True)}

    @extend_schema(
        operation_id="getEnvironmentBackupSchedule", tags=["Backups"], summary="Get an environment's backup schedule",
        description="Production environments back up daily by default (02:00-06:00 UTC, kept 30 days); other "
                    "environments only once a schedule is stored with `enabled`.",
        responses={200: ok(BackupScheduleSerializer, "The schedule (stored, or the default)."),
                   **error_responses(401, 404)},
    )
    def get(self, request, id):
        environment = get_object_or_404(Environment, pk=id)
        return Response(BackupScheduleSerializer(schedule_body(environment)).data)

    @extend_schema(
        operation_id="setEnvironmentBackupSchedule", tags=["Backups"], summary="Set an environment's backup schedule",
        description="Stores the schedule; fields left out keep their current value. The scheduler starts one "
                    "backup per window (lower priority than operators' jobs), never a second one while one is "
                    "queued or running. A new retention applies to backups taken from now on.",
        request=UpdateBackupScheduleSerializer,
        responses={200: ok(BackupScheduleSerializer, "The stored schedule."), **error_responses(400, 401, 404, 409)},
    )
    def put(self, request, id):
        audit.annotate(request, action="environment.backup_schedule", resource_type="environment", resource_id=id)
        environment = get_object_or_404(Environment, pk=id)
        body = UpdateBackupScheduleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        current = schedules.effective(environment)
        window_start = current.window_start
        if "window_start" in data:
            hours, minutes = data["window_start"].split(":")
            window_start = time(int(hours), int(minutes))
        schedules.set_schedule(
            environment.pk,
            enabled=data.get("enabled", current.enabled),
            backup_scope=data.get("backup_scope", current.backup_scope),
            window_start=window_start,
            window_hours=data.get("window_hours", current.window_hours),
            retention_days=data.get("retention_days", current.retention_days),
            expected_version=data.get("state_version"),
        )
        return Response(BackupScheduleSerializer(schedule_body(environment)).data)
