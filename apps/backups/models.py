from datetime import time, timedelta

from django.db import models
from django.utils import timezone

from apps.backups.choices import BackupReason, BackupScope, BackupStatus, StorageType
from apps.core.fields import EncryptedTextField
from apps.core.models import TimestampedModel, VersionedModel

DEFAULT_RETENTION = timedelta(days=30)


def default_retention_until():
    return timezone.now() + DEFAULT_RETENTION


class Backup(VersionedModel):
    """A backup of an environment stored in S3-compatible object storage.

    It outlives its environment and site (a final backup is kept for its
    retention): the environment link becomes empty when the environment is
    deleted, and ``site_id`` and the slugs still say whose backup it is and
    which repository (BackupRepository, keyed by site id) holds it.
    """

    environment = models.ForeignKey(
        "environments.Environment", null=True, blank=True, on_delete=models.SET_NULL, related_name="backups"
    )
    site_id = models.UUIDField(db_index=True)
    site_slug = models.CharField(max_length=63, blank=True, default="")
    environment_slug = models.CharField(max_length=63, blank=True, default="")
    # The environment's id and preview URL when it was backed up: what restore
    # rewrites from (into another environment) once the environment is gone.
    environment_uid = models.UUIDField(null=True, blank=True)
    environment_url = models.CharField(max_length=255, blank=True, default="")
    reason = models.CharField(max_length=16, choices=BackupReason.choices, default=BackupReason.MANUAL)
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
    # When backup_cleanup removed its snapshots from the repository (past retention).
    purged_at = models.DateTimeField(null=True, blank=True)
    # The job taking it (set when it starts running): how a job that ends without
    # finishing it (cancelled, out of time, its worker dead) finds it.
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Why a failed backup failed: a registered job error code (apps/jobs/errors.py)
    # and one short line an operator can act on, never a secret (services.mark_failed).
    # Empty unless the status is failed.
    error_code = models.CharField(max_length=50, null=True, blank=True)
    error_message = models.CharField(max_length=500, null=True, blank=True)

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
            models.CheckConstraint(
                condition=models.Q(reason__in=BackupReason.values), name="backup_reason_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "retention_until"], name="backup_status_retention")]

    def __str__(self):
        return f"{self.backup_scope} backup of {self.site_slug}/{self.environment_slug} ({self.status})"


DEFAULT_WINDOW_START = time(2, 0)
DEFAULT_WINDOW_HOURS = 4
DEFAULT_RETENTION_DAYS = DEFAULT_RETENTION.days


class BackupSchedule(VersionedModel):
    """An environment's daily backup: when (a window in UTC) and how long its
    backups are kept. Without a row the defaults hold: production backs up
    daily, other environments do not (see ``schedules.effective``)."""

    environment = models.OneToOneField(
        "environments.Environment", on_delete=models.CASCADE, related_name="backup_schedule"
    )
    enabled = models.BooleanField()
    backup_scope = models.CharField(max_length=10, choices=BackupScope.choices, default=BackupScope.FULL)
    window_start = models.TimeField(default=DEFAULT_WINDOW_START, help_text="UTC")
    window_hours = models.PositiveSmallIntegerField(default=DEFAULT_WINDOW_HOURS)
    retention_days = models.PositiveIntegerField(default=DEFAULT_RETENTION_DAYS)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(window_hours__gte=1, window_hours__lte=24),
                                   name="backup_schedule_window_hours"),
            models.CheckConstraint(condition=models.Q(retention_days__gte=1, retention_days__lte=3650),
                                   name="backup_schedule_retention_days"),
            models.CheckConstraint(condition=models.Q(backup_scope__in=BackupScope.values),
                                   name="backup_schedule_scope_valid"),
        ]

    def __str__(self):
        return f"backup schedule of {self.environment_id}"


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
