from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
CAN_CANCEL = ACTIVE


class LogLevel(models.TextChoices):
    STEP = "step", "Step"
    INFO = "info", "Info"
    OUTPUT = "output", "Output"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class JobPriority(models.IntegerChoices):
    """Lower runs first. Within one priority, a site's jobs run first in, first out."""

    OPERATOR = 0, "Operator"  # asked for by someone (API, admin, command)
    SCHEDULED = 10, "Scheduled"  # recurring work: backups, checks, cleanups, renewals
