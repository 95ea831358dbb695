"""Recurring jobs and the periodic sweep, driven by django-q2's scheduler.

A domain declares a recurring job with ``recurring_job``; ``ensure_schedules``
(run when a worker starts) keeps one django-q2 Schedule row per declaration.
Enqueueing skips any scope that already has that job type queued or running,
and a partial unique index makes that hold even with two schedulers racing.
"""

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from django.db import IntegrityError, connection, transaction
from django_q.models import Schedule

from apps.jobs import dispatch, services
from apps.jobs.choices import ACTIVE, JobPriority
from apps.jobs.models import Job
from apps.jobs.registry import load_handlers

logger = logging.getLogger(__name__)

SCHEDULE_PREFIX = "pressluft:"
SWEEP_SCHEDULE = f"{SCHEDULE_PREFIX}sweep"
# Node health is read outside the queue (it changes nothing); the scheduler
# only keeps old reports fresh.
NODE_HEALTH_SCHEDULE = f"{SCHEDULE_PREFIX}node-health"
NODE_HEALTH_EVERY_MINUTES = 30


@dataclass(frozen=True)
class JobScope:
    dedup_key: str
    site: object = None
    environment: object = None
    node: object = None
    payload: dict | None = None
    # Called in the enqueueing transaction, only when the job is really
    # enqueued: rows the job works on (a pending Backup), returned as more
    # payload. A duplicate or a lost race rolls them back with the job.
    prepare: Callable[[], dict] | None = None


@dataclass(frozen=True)
class RecurringJob:
    job_type: str
    every_minutes: int
    scopes: Callable[[], Iterable[JobScope]]


_RECURRING: dict[str, RecurringJob] = {}


def recurring_job(job_type: str, every_minutes: int):
    """Decorate a function yielding the JobScopes a recurring job runs for."""

    def register(scopes):
        _RECURRING[job_type] = RecurringJob(job_type, every_minutes, scopes)
        return scopes

    return register


def unregister_recurring(job_type: str) -> None:
    _RECURRING.pop(job_type, None)


def recurring_jobs() -> list[RecurringJob]:
    load_handlers()
    return list(_RECURRING.values())


def enqueue_recurring(job_type: str) -> list[Job]:
    """Called by the scheduler: one job per scope, unless one is already active."""
    load_handlers()
    definition = _RECURRING.get(job_type)
    if definition is None:
        logger.warning("recurring job %s is not declared in this version", job_type)
        return []
    created = []
    for scope in definition.scopes():
        if Job.objects.filter(job_type=job_type, dedup_key=scope.dedup_key, status__in=ACTIVE).exists():
            continue
        try:
            with transaction.atomic():
                payload = dict(scope.payload or {})
                if scope.prepare is not None:
                    payload.update(scope.prepare())
                job = services.enqueue_job(
                    job_type,
                    site=scope.site,
                    environment=scope.environment,
                    node=scope.node,
                    payload=payload,
                    dedup_key=scope.dedup_key,
                    priority=JobPriority.SCHEDULED,
                )
        except IntegrityError:
            continue  # another scheduler enqueued it a moment ago
        created.append(job)
    return created


def ensure_schedules() -> None:
    """Create or update the django-q2 Schedule rows for the sweep and every recurring job.

    Every worker calls this when it starts, often several at once, and
    Schedule names are not unique in the database: without a lock each of
    them would insert its own rows (and the next start would trip over them).
    """
    wanted = {SWEEP_SCHEDULE: ("apps.jobs.scheduler.sweep", "", 1),
              NODE_HEALTH_SCHEDULE: ("apps.nodes.health.refresh_stale", "", NODE_HEALTH_EVERY_MINUTES)}
    for definition in recurring_jobs():
        wanted[f"{SCHEDULE_PREFIX}{definition.job_type}"] = (
            "apps.jobs.scheduler.enqueue_recurring",
            repr(definition.job_type),
            definition.every_minutes,
        )
    with transaction.atomic():
        _lock_schedules()
        for name, (func, args, minutes) in wanted.items():
            fields = {"func": func, "args": args, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1}
            rows = list(Schedule.objects.filter(name=name).order_by("pk"))
            if not rows:
                Schedule.objects.create(name=name, **fields)
                continue
            Schedule.objects.filter(pk=rows[0].pk).update(**fields)
            # Left by an older version that did not lock.
            Schedule.objects.filter(pk__in=[row.pk for row in rows[1:]]).delete()
        Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX).exclude(name__in=wanted).delete()


# Any constant shared by all workers names the lock; these are the bytes of "pressluf".
_SCHEDULES_LOCK_ID = 0x7072_6573_736C_7566


def _lock_schedules() -> None:
    """Serialize ensure_schedules across processes until the transaction ends.
    SQLite needs nothing: its immediate transaction already excludes other writers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEDULES_LOCK_ID])


def sweep() -> dict:
    """Recover jobs of dead workers, fail stuck ones, and re-send due jobs."""
    load_handlers()
    lost = services.recover_lost_jobs()
    overdue = services.fail_overdue_jobs()
    dispatched = dispatch.dispatch_due_jobs()
    return {"lost": len(lost), "overdue": len(overdue), "dispatched": dispatched}
