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
