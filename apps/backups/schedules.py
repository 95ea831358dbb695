"""Daily backups: each environment's schedule (a window in UTC and a
retention), and which environments are due now.

Without a stored schedule the defaults hold: a production environment backs
up daily between 02:00 and 06:00 UTC and keeps its backups 30 days; other
environments do not back up by themselves. The scheduler asks
``due_environments`` every few minutes; an environment is due once per
window, and only while it has no backup queued or running, so a restart of
the panel (or two schedulers) never gives it a second one.

A window the panel missed (its worker was down, the node was away) is
caught up as soon as the scheduler runs again, until the next window opens:
a site should not go a second day without a backup because of a restart at
the wrong hour. Only a window in which the environment and its schedule
already existed is caught up.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from apps.backups.choices import BackupReason, BackupScope
from apps.backups.models import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_WINDOW_HOURS,
    DEFAULT_WINDOW_START,
    Backup,
    BackupSchedule,
)
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment
from apps.jobs.choices import ACTIVE as ACTIVE_JOBS
from apps.jobs.models import Job
from apps.nodes.choices import NodeStatus

# Jobs after which an environment has nothing left to back up.
DELETING_JOBS = ("env_delete", "site_delete")


def default_schedule(environment) -> BackupSchedule:
    """The schedule an environment has until an operator stores one (not saved)."""
    return BackupSchedule(
        environment=environment,
        enabled=environment.environment_type == EnvironmentType.PRODUCTION,
        backup_scope=BackupScope.FULL,
        window_start=DEFAULT_WINDOW_START,
        window_hours=DEFAULT_WINDOW_HOURS,
        retention_days=DEFAULT_RETENTION_DAYS,
        state_version=0,
    )


def effective(environment) -> BackupSchedule:
    """The stored schedule, or the default one."""
    found = BackupSchedule.objects.filter(environment=environment).first()
    return found if found is not None else default_schedule(environment)


def retention_for(environment) -> timedelta:
    """How long the environment's backups are kept (any backup: asked for, scheduled or final)."""
    if environment is None:
        return timedelta(days=DEFAULT_RETENTION_DAYS)
    return timedelta(days=effective(environment).retention_days)


def window_containing(schedule: BackupSchedule, now: datetime) -> datetime | None:
    """The start of the schedule's window that ``now`` is in, or None outside every window."""
    now = now.astimezone(dt_timezone.utc)
    for days_back in (0, 1):  # a window may run past midnight
        day = (now - timedelta(days=days_back)).date()
        start = datetime.combine(day, schedule.window_start, tzinfo=dt_timezone.utc)
        if start <= now < start + timedelta(hours=schedule.window_hours):
            return start
    return None


def latest_window_start(schedule: BackupSchedule, now: datetime) -> datetime:
    """The start of the latest window that has opened by ``now``: the one
    ``now`` is in, or the last one, which may have been missed."""
    now = now.astimezone(dt_timezone.utc)
    start = datetime.combine(now.date(), schedule.window_start, tzinfo=dt_timezone.utc)
    return start if start <= now else start - timedelta(days=1)


def _was_in_force(environment, schedule: BackupSchedule, start: datetime) -> bool:
    """Whether the environment existed with this schedule when the window opened."""
    if environment.created_at > start:
        return False
    return schedule._state.adding or schedule.updated_at <= start


def next_window_start(schedule: BackupSchedule, now: datetime) -> datetime:
    now = now.astimezone(dt_timezone.utc)
    start = datetime.combine(now.date(), schedule.window_start, tzinfo=dt_timezone.utc)
    return start if start > now else start + timedelta(days=1)


def due_environments(now: datetime | None = None):
    """(environment, schedule, window start) for every environment whose daily backup is due:
    active, on an active node, schedule enabled, inside its window (or
    past a window it missed, until the next one opens), no scheduled backup
    taken since that window opened, no backup queued or running, not being
    deleted."""
    now = now or timezone.now()
    stored = {schedule.environment_id: schedule for schedule in BackupSchedule.objects.all()}
    busy = set(Job.objects.filter(job_type="backup_create", status__in=ACTIVE_JOBS, environment__isnull=False)
               .values_list("environment_id", flat=True))
    deleting_sites = set(Job.objects.filter(job_type="site_delete", status__in=ACTIVE_JOBS, site__isnull=False)
                         .values_list("site_id", flat=True))
    deleting = set(Job.objects.filter(job_type="env_delete", status__in=ACTIVE_JOBS, environment__isnull=False)
                   .values_list("environment_id", flat=True))
    candidates = (Environment.objects.filter(status=LifecycleStatus.ACTIVE, node__status=NodeStatus.ACTIVE)
                  .select_related("site", "node").order_by("created_at"))
    for environment in candidates:
        schedule = stored.get(environment.pk) or default_schedule(environment)
        if not schedule.enabled or environment.pk in busy or environment.pk in deleting:
            continue
        if environment.site_id in deleting_sites:
            continue
        start = window_containing(schedule, now)
        if start is None:
            start = latest_window_start(schedule, now)
            if not _was_in_force(environment, schedule, start):
                continue
        if Backup.objects.filter(environment=environment, reason=BackupReason.SCHEDULED,
                                 created_at__gte=start).exists():
            continue
        yield environment, schedule, start


def last_scheduled_backup(environment) -> Backup | None:
    return (Backup.objects.filter(environment=environment, reason=BackupReason.SCHEDULED)
            .order_by("-created_at").first())


def set_schedule(environment_id, *, enabled: bool, backup_scope: str, window_start: time, window_hours: int,
                 retention_days: int, expected_version: int | None = None) -> BackupSchedule:
    """Store an environment's schedule (validated by the caller's serializer
    or form: window 1-24 hours, retention 1-3650 days). ``expected_version``
    (the schedule's ``state_version`` as last read; 0 for the default) refuses
    a change made against a stale read. Backups already taken keep their
    ``retention_until``; the new retention applies to the next ones."""
    fields = dict(enabled=enabled, backup_scope=backup_scope, window_start=window_start,
                  window_hours=window_hours, retention_days=retention_days)
    with transaction.atomic():
        environment = Environment.objects.select_for_update().filter(pk=environment_id).first()
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        schedule = BackupSchedule.objects.select_for_update().filter(environment=environment).first()
        if schedule is None:
            if expected_version not in (None, 0):
                raise ApiError("conflict", "The backup schedule was changed by someone else; reload and retry.",
                               {"id": str(environment.pk)})
            return BackupSchedule.objects.create(environment=environment, **fields)
        return change_state(schedule, expected_version, **fields)
