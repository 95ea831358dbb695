from rest_framework import serializers

from apps.backups.choices import BackupScope
from apps.backups.models import Backup
from apps.core.serializers import StrictSerializer
from apps.core.validators import (
    NAME_INVALID_MESSAGE,
    NAME_MAX_LENGTH,
    NAME_PATTERN,
    SLUG_INVALID_MESSAGE,
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
)


class BackupSerializer(serializers.ModelSerializer):
    environment_id = serializers.UUIDField(read_only=True)
    size_bytes = serializers.IntegerField(read_only=True, allow_null=True, min_value=0)

    class Meta:
        model = Backup
        fields = [
            "id",
            "environment_id",
            "backup_scope",
            "status",
            "storage_type",
            "storage_path",
            "retention_until",
            "checksum",
            "size_bytes",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields


class BackupDetailSerializer(BackupSerializer):
    """The Backup resource with what the reference's closed shape has no room
    for (``GET /backups``, ``GET /backups/{id}``, beyond the contract): why it
    was taken, and why a failed one failed."""

    site_id = serializers.UUIDField(read_only=True, help_text="The backup's site (kept when the site is deleted).")
    job_id = serializers.UUIDField(read_only=True, allow_null=True,
                                   help_text="The job that took it (or last tried to); null until a job starts it.")
    error_code = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="Failed backups: a job error code (docs/error-codes.md), e.g. `backup_storage_failed`, "
                  "`job_cancelled`, `job_timeout`, `worker_lost`; null otherwise.")
    error_message = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="Failed backups: why, in one short line (no secrets); null otherwise.")

    class Meta(BackupSerializer.Meta):
        fields = BackupSerializer.Meta.fields + ["site_id", "reason", "job_id", "error_code", "error_message"]
        read_only_fields = fields


class CreateBackupSerializer(StrictSerializer):
    backup_scope = serializers.ChoiceField(
        choices=BackupScope.values, help_text="db: the database; files: code, uploads and wp-config.php; full: both.",
    )


class RestoreSerializer(StrictSerializer):
    backup_id = serializers.UUIDField(help_text="A completed backup of the same site (any of its environments).")


class RestoreAsCloneSerializer(StrictSerializer):
    name = serializers.RegexField(
        NAME_PATTERN, min_length=1, max_length=NAME_MAX_LENGTH, required=False,
        error_messages={"invalid": NAME_INVALID_MESSAGE},
        help_text="The new environment's name; default: 'Restore of <environment> (<time of the backup>)'.",
    )
    slug = serializers.RegexField(
        SLUG_PATTERN, min_length=1, max_length=SLUG_MAX_LENGTH, required=False,
        error_messages={"invalid": SLUG_INVALID_MESSAGE},
        help_text="The new environment's slug; default: restore-<time of the backup>.",
    )

    def validate_name(self, value):
        return value.strip()


WINDOW_START = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class BackupScheduleSerializer(serializers.Serializer):
    """An environment's daily backup (stored, or the default)."""

    environment_id = serializers.UUIDField(read_only=True)
    enabled = serializers.BooleanField(
        read_only=True, help_text="Whether the environment backs up daily (default: production only).")
    backup_scope = serializers.ChoiceField(choices=BackupScope.choices, read_only=True)
    window_start = serializers.CharField(read_only=True, help_text="When the daily window opens, UTC (HH:MM).")
    window_hours = serializers.IntegerField(read_only=True, help_text="How long the window stays open (1-24).")
    retention_days = serializers.IntegerField(
        read_only=True, help_text="How long this environment's backups are kept (any backup, taken from now on).")
    is_default = serializers.BooleanField(read_only=True, help_text="No schedule stored: the defaults hold.")
    state_version = serializers.IntegerField(read_only=True, help_text="0 while the defaults hold.")
    next_window_start = serializers.DateTimeField(read_only=True, allow_null=True)
    last_scheduled_backup_at = serializers.DateTimeField(read_only=True, allow_null=True)


class UpdateBackupScheduleSerializer(StrictSerializer):
    """A field left out keeps its current value."""

    enabled = serializers.BooleanField(required=False)
    backup_scope = serializers.ChoiceField(choices=BackupScope.choices, required=False)
    window_start = serializers.RegexField(WINDOW_START, required=False, max_length=5,
                                          help_text="When the daily window opens, UTC, HH:MM.")
    window_hours = serializers.IntegerField(required=False, min_value=1, max_value=24)
    retention_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    state_version = serializers.IntegerField(
        required=False, min_value=0, help_text="The state_version last read: refused with 409 if it changed.")
