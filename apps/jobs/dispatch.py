"""Telling workers which jobs to look at.

The django-q2 queue carries only "look at job X" messages; a message may be
delivered twice or find the job not runnable yet, and the claim in
``services.claim_job`` makes that harmless.
"""

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from apps.jobs.choices import JobStatus

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "apps.jobs.runner.run_job"
# How long a dispatched-but-not-started job waits before the sweeper re-sends it.
REDISPATCH_AFTER = timedelta(seconds=30)
# Finishing a job wakes at most this many waiting jobs of its site and node.
WAKE_LIMIT = 10


def dispatch_jobs(jobs) -> None:
    from apps.jobs.models import Job

    now = timezone.now()
    ids = []
    for job in jobs:
        async_task(
            RUN_JOB_TASK,
            str(job.pk),
            task_name=f"job-{job.pk}",
            # django-q2 kills the worker past this; the handler itself stops at its timeout.
            timeout=int(job.timeout_seconds) + 120,
        )
        ids.append(job.pk)
    if ids:
        Job.objects.filter(pk__in=ids).update(last_dispatched_at=now)


def wake_waiting(job, include_self: bool = False) -> None:
    """After ``job`` ended (or was requeued), wake the queued jobs it was blocking."""
    from apps.jobs.models import Job

    scope = Q()
    if job.site_id:
        scope |= Q(site_id=job.site_id)
    if job.node_id:
        scope |= Q(node_id=job.node_id)
    candidates = Job.objects.filter(status=JobStatus.QUEUED).filter(_due())
    if scope:
        candidates = candidates.filter(scope)
    elif not include_self:
        return
    if not include_self:
        candidates = candidates.exclude(pk=job.pk)
    dispatch_jobs(list(candidates.order_by("created_at")[:WAKE_LIMIT]))


def dispatch_due_jobs() -> int:
    """Safety net run by the sweeper: queued jobs that are due (retry backoff
    over, or a wake-up lost) and not dispatched recently."""
    from apps.jobs.models import Job

    stale = timezone.now() - REDISPATCH_AFTER
    due = (
        Job.objects.filter(status=JobStatus.QUEUED)
        .filter(_due())
        .filter(Q(last_dispatched_at__isnull=True) | Q(last_dispatched_at__lt=stale))
        .order_by("created_at")[:200]
    )
    jobs = list(due)
    dispatch_jobs(jobs)
    return len(jobs)


def _due():
    return Q(run_after__isnull=True) | Q(run_after__lte=timezone.now())

