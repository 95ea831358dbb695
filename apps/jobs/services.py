"""Job state transitions. Every change of a job's status happens here, together
with the matching change of its site and environment, in one transaction.

    queued --claim--> running --succeed--> succeeded
                        |  \\--fail------> failed
                        |   \\--retry----> queued (run_after = backoff)
    queued|running --cancel (operator)--> cancelled
"""

import logging
import socket
import os
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.environments.models import Environment
from apps.jobs import dispatch
from apps.jobs.choices import CAN_CANCEL, JobStatus
from apps.jobs.errors import JOB_ERROR_CODES
from apps.jobs.models import Job
from apps.jobs.registry import HandlerSpec, get_handler
from apps.nodes.models import Node
from apps.sites.models import Site

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

def worker_id() -> str:
    # Recomputed per process: django-q2 forks workers after this module is imported.
    return f"{socket.gethostname()}:{os.getpid()}"

# --- creating jobs ----------------------------------------------------------

def enqueue_job(
    job_type: str,
    *,
    site: Site | None = None,
    environment: Environment | None = None,
    node: Node | None = None,
    payload: dict | None = None,
    user=None,
    dedup_key: str = "",
    run_after=None,
) -> Job:
    """Create a queued job; a worker is told about it once the transaction commits."""
    spec = get_handler(job_type)
    if spec is None:
        raise ValueError(f"no handler is registered for job type {job_type!r}")
    if environment is not None:
        site = site or environment.site
        node = node or environment.node
    job = Job.objects.create(
        job_type=job_type,
        site=site,
        environment=environment,
        node=node,
        payload=payload or {},
        created_by=user if getattr(user, "is_authenticated", False) else None,
        dedup_key=dedup_key,
        run_after=run_after,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        timeout_seconds=spec.timeout_seconds or settings.JOB_DEFAULT_TIMEOUT,
    )
    transaction.on_commit(lambda: dispatch.dispatch_jobs([job]))
    return job

# --- cancel -----------------------------------------------------------------

def cancel_job(job_id, user=None) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop and its
    handler stops at its next safe point."""
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).filter(pk=job_id).first()
        if job is None:
            raise ApiError("not_found", "No job with this id.")
        if job.status not in CAN_CANCEL:
            raise ApiError(
                "job_not_cancellable",
                f"The job has already ended ({job.status}).",
                {"status": job.status},
            )
        if job.status == JobStatus.QUEUED:
            _node, site, environment = _lock_scope(job)
            change_state(job, status=JobStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True)
            # A creating job (site_create…) puts its new resources in its running
            # status from the start; cancelled before it ran, they must not stay
            # there: failed, so an operator resets and retries, or deletes.
            _restore_resources(
                job, site, environment, get_handler(job.job_type), f"{job.job_type} was cancelled before it ran."
            )
            _close_audit(job, AuditResult.CANCELLED)
            # It may have been the oldest job of its site, holding back younger ones.
            transaction.on_commit(lambda: dispatch.wake_waiting(job))
        else:
            change_state(job, cancel_requested=True)
    return job

# --- retry ------------------------------------------------------------------

RETRYABLE_BY_OPERATOR = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


def retry_job(job_id, user=None) -> Job:
    """Queue a new run of a failed (or cancelled) job, same type, scope and parameters.

    Handlers are idempotent, so the new run finishes what the old one left.
    A failed site or environment must be reset first (reset is the only way
    out of failed, after its own validation).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True, of=("self",)).select_related("site", "environment").filter(pk=job_id).first()
        if job is None:
            raise ApiError("not_found", "No job with this id.")
        if job.status not in RETRYABLE_BY_OPERATOR:
            raise ApiError("job_not_retryable", f"Only failed or cancelled jobs can be retried; this one is {job.status}.",
                           {"status": job.status})
        failed = _failed_resource(job.site, job.environment)
        if failed is not None:
            raise ApiError("job_not_retryable", f"{failed} is failed: reset it first, then retry.")
        if Job.objects.filter(retry_of=job).exclude(status__in=RETRYABLE_BY_OPERATOR).exists():
            raise ApiError("job_not_retryable", "This job was retried already; follow the newer run.")
        new = enqueue_job(
            job.job_type,
            site=job.site,
            environment=job.environment,
            node=job.node,
            payload=job.payload,
            user=user,
            dedup_key=job.dedup_key,
        )
        Job.objects.filter(pk=new.pk).update(retry_of=job)
        new.retry_of = job
    return new


# --- claiming ---------------------------------------------------------------

@dataclass
class Claim:
    job: Job
    spec: HandlerSpec
    token: uuid.UUID

def _retrying_deadlocks(operation):
    """Run a locking transaction again if the database broke a deadlock by
    aborting it (rare, but possible with row locks under load)."""
    for attempt in range(1, 4):
        try:
            return operation()
        except OperationalError as exc:
            code = getattr(exc.__cause__, "sqlstate", None)
            if code not in ("40P01", "40001") or attempt == 3:
                raise
            logger.warning("transaction aborted to break a deadlock; trying again")
            time.sleep(0.05 * attempt)


def claim_job(job_id) -> Claim | None:
    """Take a queued job for this worker, or return None if it is not ours to run.

    Inside one transaction: lock the job, then its node and site rows, and check
    that nothing else runs on that site or node. A duplicate delivery, a job
    that is not due yet, or a busy site/node all return None harmlessly; a busy
    job is woken again when the blocking job ends.
    """
    def attempt():
        with transaction.atomic():
            return _claim_locked(job_id)

    try:
        return _retrying_deadlocks(attempt)
    except IntegrityError:
        # The partial unique indexes caught a race the checks did not: treat as busy.
        logger.warning("job %s: claim refused by the one-running-job constraint", job_id)
        return None

def _claim_locked(job_id) -> Claim | None:
    now = timezone.now()
    job = Job.objects.select_for_update(no_key=True).filter(pk=job_id).first()
    if job is None or job.status != JobStatus.QUEUED:
        return None
    if job.run_after and job.run_after > now:
        return None
    node, site, environment = _lock_scope(job)
    busy = Q()
    if job.site_id:
        busy |= Q(site_id=job.site_id)
    if job.node_id:
        busy |= Q(node_id=job.node_id)
    if busy and Job.objects.filter(busy, status=JobStatus.RUNNING).exists():
        return None
    if job.site_id and _older_due_job_on_site(job, now):
        # Jobs of one site run in the order they were asked for.
        return None

    spec = get_handler(job.job_type)
    if spec is None:
        _fail_now(job, "handler_missing", f"This version has no handler for job type {job.job_type!r}.")
        return None
    source = _marked_source(job, spec)
    failed = _failed_resource(site, environment) or _failed_resource(None, source)
    if failed is not None:
        _fail_now(job, "resource_failed", f"{failed} is failed; reset it before running new work on it.")
        return None

    token = uuid.uuid4()
    change_state(
        job,
        status=JobStatus.RUNNING,
        locked_at=now,
        locked_by=worker_id(),
        claim_token=token,
        heartbeat_at=now,
        started_at=now,
        finished_at=None,
    )
    if spec.running_status:
        _set_resource_status(site, environment, spec.running_status, "")
        if source is not None and source.status == LifecycleStatus.ACTIVE:
            change_state(source, status=spec.running_status, status_reason="")
    return Claim(job=job, spec=spec, token=token)

def _lock_scope(job):
    """Lock node, then site, then environment: one order everywhere, so no deadlock.

    NO KEY UPDATE (PostgreSQL): these locks serialize claims and finishes with
    each other, but must not block the FOR KEY SHARE that inserting a row
    referencing the node or site takes (a new job, say); a plain FOR UPDATE
    would, and has deadlocked with such inserts.
    """
    node = Node.objects.select_for_update(no_key=True).filter(pk=job.node_id).first() if job.node_id else None
    site = Site.objects.select_for_update(no_key=True).filter(pk=job.site_id).first() if job.site_id else None
    environment = (
        Environment.objects.select_for_update(no_key=True).filter(pk=job.environment_id).first()
        if job.environment_id
        else None
    )
    return node, site, environment

def _marked_source(job, spec: HandlerSpec | None):
    """The locked source environment of a job whose handler marks one (see HandlerSpec)."""
    source_id = (job.payload or {}).get(spec.marks_source) if spec and spec.marks_source else None
    if not source_id or str(source_id) == str(job.environment_id):
        return None
    return Environment.objects.select_for_update(no_key=True).filter(pk=source_id).first()

def _older_due_job_on_site(job, now) -> bool:
    return (
        Job.objects.filter(site_id=job.site_id, status=JobStatus.QUEUED, created_at__lt=job.created_at)
        .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
        .exclude(pk=job.pk)
        .exists()
    )

def _failed_resource(site, environment) -> str | None:
    if site is not None and site.status == LifecycleStatus.FAILED:
        return f"Site {site.slug}"
    if environment is not None and environment.status == LifecycleStatus.FAILED:
        return f"Environment {environment.slug}"
    return None

def _set_resource_status(site, environment, status, reason):
    for resource in (site, environment):
        if resource is not None and (resource.status != status or resource.status_reason != reason):
            change_state(resource, status=status, status_reason=reason)

def _restore_resources(job, site, environment, spec: HandlerSpec | None, failed_reason: str | None):
    """After a run: back to active, or failed with a reason. Only resources the
    job itself moved into a transitional status are touched."""
    if spec is None or spec.running_status is None:
        return
    for resource in (site, environment):
        if resource is None or resource.status != spec.running_status:
            continue
        if failed_reason is not None:
            change_state(resource, status=LifecycleStatus.FAILED, status_reason=failed_reason)
        else:
            change_state(resource, status=LifecycleStatus.ACTIVE, status_reason="")
    source = _marked_source(job, spec)
    if source is not None and source.status == spec.running_status:
        change_state(source, status=LifecycleStatus.ACTIVE, status_reason="")

def _fail_now(job, code, message):
    change_state(
        job,
        status=JobStatus.FAILED,
        error_code=code,
        error_message=message,
        finished_at=timezone.now(),
    )
    _close_audit(job, AuditResult.FAILED)
    # It may have been the oldest job of its site, holding back younger ones.
    transaction.on_commit(lambda: dispatch.wake_waiting(job))

# --- finishing --------------------------------------------------------------

@dataclass
class Outcome:
    """What a run ended with; built by the runner from the handler's result."""

    status: str  # succeeded | failed | cancelled | retry
    error_code: str | None = None
    error_message: str | None = None
    resource_intact: bool = False
    result: dict | None = None

def finish_job(claim: Claim, outcome: Outcome) -> Job | None:
    """Record how a run ended, if this worker still holds the job.

    Returns the updated job, or None when the claim was lost meanwhile (the
    sweeper gave the job to someone else): then nothing is written.
    """
    return _retrying_deadlocks(lambda: _finish_locked(claim, outcome))


def _finish_locked(claim: Claim, outcome: Outcome) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True).filter(pk=claim.job.pk).first()
        if job is None or job.status != JobStatus.RUNNING or job.claim_token != claim.token:
            return None
        _node, site, environment = _lock_scope(job)
        now = timezone.now()
        status = outcome.status
        if status == "retry" and job.attempt_count >= job.max_attempts:
            status = JobStatus.FAILED
        common = dict(locked_at=None, locked_by=None, claim_token=None, heartbeat_at=None)
        if outcome.result is not None:
            common["result"] = outcome.result

        if status == "retry":
            # attempt_count counts retries (SPEC: requeue = attempts + 1); backoff 1, 5, 15 min.
            retries = job.attempt_count + 1
            backoff = settings.JOB_RETRY_BACKOFF[min(retries, len(settings.JOB_RETRY_BACKOFF)) - 1]
            change_state(
                job,
                status=JobStatus.QUEUED,
                attempt_count=retries,
                run_after=now + timedelta(seconds=backoff),
                error_code=outcome.error_code,
                error_message=outcome.error_message,
                **common,
            )
            _restore_resources(job, site, environment, claim.spec, None)
        elif status == JobStatus.SUCCEEDED:
            change_state(job, status=JobStatus.SUCCEEDED, finished_at=now, error_code=None, error_message=None, **common)
            _restore_resources(job, site, environment, claim.spec, None)
            _close_audit(job, AuditResult.COMPLETED)
        elif status == JobStatus.CANCELLED:
            change_state(job, status=JobStatus.CANCELLED, finished_at=now, **common)
            _restore_resources(job, site, environment, claim.spec, None)
            _close_audit(job, AuditResult.CANCELLED)
        else:
            change_state(
                job,
                status=JobStatus.FAILED,
                finished_at=now,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
                **common,
            )
            reason = None if outcome.resource_intact else f"{job.job_type} failed: {outcome.error_message}"
            _restore_resources(job, site, environment, claim.spec, reason)
            _close_audit(job, AuditResult.FAILED)
        transaction.on_commit(lambda: dispatch.wake_waiting(job))
    return job

def _close_audit(job, result):
    AuditEntry.objects.filter(job=job, result=AuditResult.ACCEPTED).update(
        result=result, completed_at=timezone.now()
    )

# --- heartbeat --------------------------------------------------------------

def heartbeat(job_id, token) -> tuple[bool, bool]:
    """Mark the run alive. Returns (still ours, cancel requested)."""
    updated = Job.objects.filter(pk=job_id, claim_token=token, status=JobStatus.RUNNING).update(
        heartbeat_at=timezone.now()
    )
    if not updated:
        return False, False
    cancel = Job.objects.filter(pk=job_id).values_list("cancel_requested", flat=True).first()
    return True, bool(cancel)

def cancel_requested(job_id) -> bool:
    return bool(Job.objects.filter(pk=job_id).values_list("cancel_requested", flat=True).first())

# --- recovery (the sweeper) -------------------------------------------------

def recover_lost_jobs() -> list[Job]:
    """Running jobs whose worker stopped sending heartbeats: its process died.

    Each is run again (at-least-once), unless it was asked to stop, ran past its
    timeout, or has used all its attempts.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_LOST_AFTER)
    recovered = []
    for job_id in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True):
        job = _recover_one(job_id, cutoff)
        if job is not None:
            recovered.append(job)
    return recovered

def _recover_one(job_id, cutoff) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=job_id).first()
        if job is None or job.status != JobStatus.RUNNING or job.heartbeat_at is None or job.heartbeat_at >= cutoff:
            return None
        _node, site, environment = _lock_scope(job)
        spec = get_handler(job.job_type)
        now = timezone.now()
        lost_by = job.locked_by
        common = dict(locked_at=None, locked_by=None, claim_token=None, heartbeat_at=None)
        timed_out = job.started_at and job.started_at + timedelta(seconds=job.timeout_seconds) < now
        if job.cancel_requested:
            change_state(job, status=JobStatus.CANCELLED, finished_at=now, **common)
            _restore_resources(job, site, environment, spec, None)
            _close_audit(job, AuditResult.CANCELLED)
        elif timed_out or job.attempt_count >= job.max_attempts:
            code = "job_timeout" if timed_out else "worker_lost"
            message = (
                f"Stopped after running longer than {job.timeout_seconds} s."
                if timed_out
                else f"The worker {lost_by} died and no retries are left."
            )
            change_state(job, status=JobStatus.FAILED, finished_at=now, error_code=code, error_message=message, **common)
            _restore_resources(job, site, environment, spec, f"{job.job_type} failed: {message}")
            _close_audit(job, AuditResult.FAILED)
        else:
            change_state(
                job,
                status=JobStatus.QUEUED,
                attempt_count=job.attempt_count + 1,
                run_after=None,
                error_code="worker_lost",
                error_message=f"The worker {lost_by} stopped responding; running the job again.",
                **common,
            )
            _restore_resources(job, site, environment, spec, None)
        logger.warning("job %s: worker %s lost; job is now %s", job.pk, lost_by, job.status)
        transaction.on_commit(lambda: dispatch.wake_waiting(job, include_self=True))
    return job

def fail_overdue_jobs() -> list[Job]:
    """Running jobs far past their timeout whose worker still beats: the handler
    is stuck where it cannot notice. Fail them; django-q2 kills the process."""
    now = timezone.now()
    grace = timedelta(seconds=max(60, settings.JOB_LOST_AFTER))
    failed = []
    for job in Job.objects.filter(status=JobStatus.RUNNING, started_at__isnull=False).only(
        "pk", "started_at", "timeout_seconds"
    ):
        if job.started_at + timedelta(seconds=job.timeout_seconds) + grace < now:
            with transaction.atomic():
                locked = Job.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=job.pk, status=JobStatus.RUNNING).first()
                if locked is None:
                    continue
                _node, site, environment = _lock_scope(locked)
                message = f"Stopped after running longer than {locked.timeout_seconds} s."
                change_state(
                    locked,
                    status=JobStatus.FAILED,
                    finished_at=now,
                    error_code="job_timeout",
                    error_message=message,
                    locked_at=None,
                    locked_by=None,
                    claim_token=None,
                    heartbeat_at=None,
                )
                _restore_resources(locked, site, environment, get_handler(locked.job_type), f"{locked.job_type} failed: {message}")
                _close_audit(locked, AuditResult.FAILED)
                transaction.on_commit(lambda job=locked: dispatch.wake_waiting(job))
                failed.append(locked)
    return failed

def is_retryable(code: str) -> bool:
    entry = JOB_ERROR_CODES.get(code)
    return bool(entry and entry.retryable)
