import uuid

from django.conf import settings
from django.db import models

from apps.audit.choices import AuditResult


class AuditEntry(models.Model):
    """Who did what to which resource, from where, with what result.

    Work handed to a job is recorded as ``accepted``; when the job ends the same
    entry gets its final result (``completed`` or ``failed``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=254, blank=True, default="", help_text="Email or system name.")
    action = models.CharField(max_length=100, db_index=True)
    resource_type = models.CharField(max_length=50, blank=True, default="")
    resource_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    result = models.CharField(max_length=10, choices=AuditResult.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    details = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
        constraints = [
            models.CheckConstraint(condition=models.Q(result__in=AuditResult.values), name="audit_result_valid"),
        ]

    def __str__(self):
        return f"{self.actor or 'anonymous'} {self.action} {self.resource_type}:{self.resource_id} {self.result}"
