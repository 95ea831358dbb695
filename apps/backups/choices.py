from django.db import models


class BackupScope(models.TextChoices):
    DB = "db", "Database"
    FILES = "files", "Files"
    FULL = "full", "Full"


class BackupStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class StorageType(models.TextChoices):
    S3 = "s3", "S3-compatible"


class BackupReason(models.TextChoices):
    """Why a backup was taken."""

    MANUAL = "manual", "Asked for"  # API, admin, command
    SCHEDULED = "scheduled", "Scheduled"  # the environment's daily backup
    FINAL = "final", "Final"  # taken before its environment or site was deleted
    PRE_RESTORE = "pre_restore", "Before a restore"  # env_restore, before it changes the environment
    PRE_UPDATE = "pre_update", "Before an update"  # env_update, before it changes the environment
    PRE_PROMOTE = "pre_promote", "Before a promotion"  # env_promote: production, before it is promoted into
