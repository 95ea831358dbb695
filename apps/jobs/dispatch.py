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


logger = logging.getLogger(__name__)

RUN_JOB_TASK = "apps.jobs.runner.run_job"
# How long a dispatched-but-not-started job waits before the sweeper re-sends it.
REDISPATCH_AFTER = timedelta(seconds=10)
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
        # Several sweepers and finishing jobs stamp overlapping sets at once: rows
        # are locked in one order, and a row someone else holds is left to them
        # (the stamp only spaces out re-dispatches), so two stampers never deadlock.
        with transaction.atomic():
            free = list(Job.objects.select_for_update(skip_locked=True).filter(pk__in=ids).order_by("pk")
                        .values_list("pk", flat=True))
            Job.objects.filter(pk__in=free).update(last_dispatched_at=now)


def dispatch_new_job(job) -> None:
    """After a new job's commit: tell a worker only if it can start now. One
    that waits behind its site or for a slot on its node is woken when that
    frees; checking after the commit means a blocker that ends meanwhile sees
    the job (and wakes it) or has ended before this check (which sends it)."""
    from apps.jobs import admission

    if any(head.pk == job.pk for head in admission.runnable_heads(_scope_of(job), limit=WAKE_LIMIT)):
        dispatch_jobs([job])


def _scope_of(job) -> Q:
    scope = Q(pk=job.pk)
    if job.site_id:
        scope |= Q(site_id=job.site_id)
    if job.node_id:
        scope |= Q(node_id=job.node_id)
    return scope


def wake_waiting(job, include_self: bool = False) -> None:
    """After ``job`` ended (or was requeued), wake the queued jobs that can
    start now in the room it left: the best-ranked head of each site of its
    node (as many as the node has free slots) and its own site's next job
    (``admission.runnable_heads``). Waking only those keeps the queue of
    messages short, so a woken job starts at once instead of behind messages
    for jobs that would be refused."""
    from apps.jobs import admission

    heads = admission.runnable_heads(_scope_of(job), limit=WAKE_LIMIT)
    if not include_self:
        heads = [head for head in heads if head.pk != job.pk]
    dispatch_jobs(heads)


def wake_node(node) -> None:
    """The node has room again (more slots, back in service): start what waits for it."""
    from apps.jobs import admission

    dispatch_jobs(admission.runnable_heads(Q(node_id=node.pk), limit=WAKE_LIMIT))


def dispatch_due_jobs() -> int:
    """Safety net run by the sweeper: due queued jobs that could start now
    (retry backoff over, or a wake-up lost) and were not dispatched recently."""
    from apps.jobs import admission

    stale = timezone.now() - REDISPATCH_AFTER
    jobs = admission.runnable_heads(limit=200, exclude_recent_since=stale)
    dispatch_jobs(jobs)
    return len(jobs)
