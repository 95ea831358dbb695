from rest_framework import serializers

from apps.backups.choices import BackupScope
from apps.backups.models import Backup
from apps.core.serializers import StrictSerializer


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
