from datetime import timedelta

from django.db import models
from django.utils import timezone

from apps.backups.choices import BackupScope, BackupStatus, StorageType
from apps.core.fields import EncryptedTextField
from apps.core.models import TimestampedModel, VersionedModel

DEFAULT_RETENTION = timedelta(days=30)


def default_retention_until():
    return timezone.now() + DEFAULT_RETENTION


class Backup(VersionedModel):
    """A backup of an environment stored in S3-compatible object storage."""

    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.PROTECT, related_name="backups"
    )
    backup_scope = models.CharField(max_length=10, choices=BackupScope.choices)
    status = models.CharField(max_length=10, choices=BackupStatus.choices, default=BackupStatus.PENDING)
    storage_type = models.CharField(max_length=10, choices=StorageType.choices, default=StorageType.S3)
    storage_path = models.CharField(max_length=500, blank=True, default="")
    retention_until = models.DateTimeField(default=default_retention_until)
    checksum = models.CharField(max_length=128, null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # New data this backup stored (restic's data_added): what it cost after deduplication.
    added_bytes = models.BigIntegerField(null=True, blank=True)
    # What restore verifies and reads, per part ("db", "files"): restic's
    # snapshot id, the SHA-256 and length of the stream that was backed up.
    # ``checksum`` is the SHA-256 over these parts (see apps/backups/services.py).
    parts = models.JSONField(default=dict, blank=True)
    # The restore drill's verdict: restored into a throwaway environment and healthy (verified_at),
    # or not (verify_failed_at and why). The latest drill of a backup wins.
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_failed_at = models.DateTimeField(null=True, blank=True)
    verify_message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(backup_scope__in=BackupScope.values), name="backup_scope_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=BackupStatus.values), name="backup_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(size_bytes__isnull=True) | models.Q(size_bytes__gte=0),
                name="backup_size_non_negative",
            ),
        ]

    def __str__(self):
        return f"{self.backup_scope} backup of {self.environment_id} ({self.status})"


class BackupRepository(TimestampedModel):
    """A site's restic repository password, generated on first use.

    Keyed by the site's id rather than linked to the row: the password must
    outlive the site, whose final backups are kept for their retention.
    """

    site_id = models.UUIDField(unique=True)
    site_slug = models.CharField(max_length=63)
    password = EncryptedTextField()

    class Meta:
        verbose_name_plural = "backup repositories"

    def __str__(self):
        return f"restic repository of site {self.site_slug}"
