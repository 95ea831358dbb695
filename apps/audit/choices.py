from django.db import models


class AuditResult(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    ACCEPTED = "accepted", "Accepted (job queued)"
    COMPLETED = "completed", "Completed (job succeeded)"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    DENIED = "denied", "Denied"
