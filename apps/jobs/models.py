from django.conf import settings
from django.db import models

from apps.core.models import VersionedModel
from apps.jobs.choices import JobPriority, JobStatus, LogLevel


class Job(VersionedModel):
    """One change to a node, carried out by a worker. The row is the truth;
    the django-q2 queue only carries "look at job X" messages.

    A job is scoped to a node and usually a site (and environment): at most one
    job runs per site at any moment, and per node as many site jobs as the
    node's ``max_site_jobs`` (a node-wide job runs alone on its node).
    """

    job_type = models.CharField(max_length=50, db_index=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    site = models.ForeignKey("sites.Site", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    environment = models.ForeignKey(
        "environments.Environment", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    node = models.ForeignKey("nodes.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    priority = models.PositiveSmallIntegerField(choices=JobPriority.choices, default=JobPriority.OPERATOR)
    payload = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # Recurring jobs carry the key of their scope so the scheduler can skip duplicates.
    dedup_key = models.CharField(max_length=200, blank=True, default="", db_index=True)

    # Retries so far: a retryable error or a lost worker requeues the job and
    # adds one; at max_attempts retries the next such error fails it.
    attempt_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    run_after = models.DateTimeField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=30 * 60)

    locked_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=200, null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    last_dispatched_at = models.DateTimeField(null=True, blank=True)

    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=50, null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries",
        help_text="The failed run this job repeats.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "run_after"], name="job_status_run_after"),
            models.Index(fields=["site", "status"], name="job_site_status"),
            models.Index(fields=["node", "status"], name="job_node_status"),
            models.Index(fields=["status", "priority", "created_at"], name="job_queue_order"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(condition=models.Q(max_attempts__gte=1), name="job_max_attempts_positive"),
            # The claim logic keeps this true; the database makes sure of it. (Node
            # slots are counted under the node row's lock: no constraint can say N.)
            models.UniqueConstraint(
                fields=["site"], condition=models.Q(status="running"), name="one_running_job_per_site"
            ),
            models.UniqueConstraint(
                fields=["job_type", "dedup_key"],
                condition=models.Q(status__in=["queued", "running"]) & ~models.Q(dedup_key=""),
                name="one_active_recurring_job_per_scope",
            ),
        ]

    def __str__(self):
        return f"{self.job_type} {str(self.id)[:8]} ({self.status})"


class JobLogLine(models.Model):
    """Append-only log of a job's steps; ``seq`` orders lines so a viewer can tail them."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="job_log_seq_unique")]

    def __str__(self):
        return f"{self.seq}: {self.message[:60]}"
