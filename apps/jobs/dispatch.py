"""Telling workers which jobs to look at.

The django-q2 queue carries only "look at job X" messages; a message may be
delivered twice or find the job not runnable yet, and the claim in
``services.claim_job`` makes that harmless.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from apps.jobs.choices import JobStatus

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "apps.jobs.runner.run_job"
# How long a dispatched-but-not-started job waits before the sweeper re-sends it.
REDISPATCH_AFTER = timedelta(seconds=30)
# Finishing a job wakes at most this many waiting jobs of its site and node,
# chosen among this many of the oldest queued ones.
WAKE_LIMIT = 10
WAKE_SCAN = 500


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
        # Several sweepers and finishing jobs stamp overlapping sets at once: rows
        # are locked in one order, and a row someone else holds is left to them
        # (the stamp only spaces out re-dispatches), so two stampers never deadlock.
        with transaction.atomic():
            free = list(Job.objects.select_for_update(skip_locked=True).filter(pk__in=ids).order_by("pk")
                        .values_list("pk", flat=True))
            Job.objects.filter(pk__in=free).update(last_dispatched_at=now)


def wake_waiting(job, include_self: bool = False) -> None:
    """After ``job`` ended (or was requeued), wake the queued jobs it was blocking.

    Only the oldest due job of each site (and of each node, for jobs without a
    site) can be claimed next, so those heads are woken: a run of younger jobs
    of one site must not crowd out a job of another site that could start now.
    """
    from apps.jobs.models import Job

    wake = []
    seen = set()
    if include_self and job.status == JobStatus.QUEUED:
        wake.append(job)
        seen.add(_head_key(job))
    scope = Q()
    if job.site_id:
        scope |= Q(site_id=job.site_id)
    if job.node_id:
        scope |= Q(node_id=job.node_id)
    if scope:
        waiting = (
            Job.objects.filter(status=JobStatus.QUEUED)
            .filter(_due())
            .filter(scope)
            .exclude(pk=job.pk)
            .order_by("created_at")[:WAKE_SCAN]
        )
        for candidate in waiting:
            if _head_key(candidate) in seen:
                continue
            seen.add(_head_key(candidate))
            wake.append(candidate)
            if len(wake) >= WAKE_LIMIT:
                break
    dispatch_jobs(wake)


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


def _head_key(job):
    return ("site", job.site_id) if job.site_id else ("node", job.node_id)


def _due():
    return Q(run_after__isnull=True) | Q(run_after__lte=timezone.now())

