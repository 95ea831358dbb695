"""Job state transitions. Every change of a job's status happens here, together
with the matching change of its site and environment, in one transaction.

    queued --claim--> running --succeed--> succeeded
                        |  \\--fail------> failed
                        |   \\--retry----> queued (run_after = backoff)
    queued|running --cancel (operator)--> cancelled

Every ending (and requeue) of a run goes through ``end_run``; which rows a job
holds and how they move is in ``scopes.py``.
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
from django.utils import timezone

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.environments.models import Environment
from apps.jobs import admission, dispatch, scopes
from apps.jobs.choices import CAN_CANCEL, JobPriority, JobStatus
from apps.jobs.models import Job
from apps.jobs.registry import HandlerSpec, ending_hooks, get_handler
from apps.nodes.models import Node
from apps.sites.models import Site

logger = logging.getLogger(__name__)

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
    priority: int = JobPriority.OPERATOR,
) -> Job:
    """Create a queued job; once the transaction commits, a worker is told
    about it if it can start now (otherwise what holds it back wakes it)."""
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
        priority=priority,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        timeout_seconds=spec.timeout_seconds or settings.JOB_DEFAULT_TIMEOUT,
    )
    transaction.on_commit(lambda: dispatch.dispatch_new_job(job))
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
            # A creating job (site_create…) puts its new resources in its running
            # status from the start; cancelled before it ran, they must not stay
            # there: failed, so an operator resets and retries, or deletes.
            end_run(
                job,
                JobStatus.CANCELLED,
                spec=get_handler(job.job_type),
                failed_reason=f"{job.job_type} was cancelled before it ran.",
            )
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
        failed = scopes.failed_resource(job.site, job.environment)
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

    Inside one transaction: lock the job, then its node and site rows, and ask
    ``admission.refusal`` whether it may start (its site free and its turn
    there, a slot free on its node, no better job waiting for that slot). A
    duplicate delivery, a job that is not due yet, or one held back all return
    None harmlessly; a held-back job is woken again when what holds it ends.
    """
    def attempt():
        with transaction.atomic():
            return _claim_locked(job_id)

    try:
        return _retrying_deadlocks(attempt)
    except IntegrityError:
        # The one-running-job-per-site index caught a race the checks did not: treat as busy.
        logger.warning("job %s: claim refused by the one-running-job constraint", job_id)
        return None

def _claim_locked(job_id) -> Claim | None:
    now = timezone.now()
    job = Job.objects.select_for_update(no_key=True).filter(pk=job_id).first()
    if job is None or job.status != JobStatus.QUEUED:
        return None
    if job.run_after and job.run_after > now:
        return None
    node, site, environment = scopes.lock_scope(job)
    if admission.refusal(job, node, now) is not None:
        return None  # woken again when what holds it back ends

    # Refused at the claim, the run never started and moved no resource: spec=None.
    spec = get_handler(job.job_type)
    if spec is None:
        message = f"This version has no handler for job type {job.job_type!r}."
        end_run(job, JobStatus.FAILED, spec=None, error_code="handler_missing", error_message=message)
        return None
    source = scopes.marked_source(job, spec)
    failed = scopes.failed_resource(site, environment) or scopes.failed_resource(None, source)
    if failed is not None:
        message = f"{failed} is failed; reset it before running new work on it."
        end_run(job, JobStatus.FAILED, spec=None, error_code="resource_failed", error_message=message)
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
    scopes.mark_running(site, environment, source, spec)
    return Claim(job=job, spec=spec, token=token)

# --- ending a run -----------------------------------------------------------

# A run that ends, or is requeued, gives up its claim.
RELEASED_CLAIM = dict(locked_at=None, locked_by=None, claim_token=None, heartbeat_at=None)

# How the audit entry that asked for a job is closed; a requeued job leaves it open.
AUDIT_RESULT_OF_ENDING = {
    JobStatus.SUCCEEDED: AuditResult.COMPLETED,
    JobStatus.FAILED: AuditResult.FAILED,
    JobStatus.CANCELLED: AuditResult.CANCELLED,
}


def end_run(
    job: Job,
    status: str,
    *,
    spec: HandlerSpec | None,
    error_code: str | None = None,
    error_message: str | None = None,
    resource_intact: bool = False,
    failed_reason: str | None = None,
    run_after=None,
    result: dict | None = None,
) -> Job:
    """End a run of ``job`` (locked by the caller, in the caller's transaction).

    status: succeeded, failed or cancelled; or queued, to run again from
    ``run_after`` (None: at once) as one more attempt.
    spec: the handler whose running status the job put its resources in; None
    when the run never started, so no resource is touched.

    In one step: the job row records the ending and gives up its claim (its
    error is recorded when failed or requeued, cleared on success, kept on
    cancel); site and environment are locked and put back to active, or to
    failed with ``failed_reason`` (for a failure, "<type> failed: <message>"
    unless ``resource_intact``), and a marked source back to active; the audit
    entry that asked for the job is closed (left open when requeued); after
    the commit, the jobs it held back are woken, and itself if requeued to run
    at once.
    """
    _node, site, environment = scopes.lock_scope(job)
    was_running = job.status == JobStatus.RUNNING
    changes = dict(RELEASED_CLAIM)
    if result is not None:
        changes["result"] = result
    if status == JobStatus.QUEUED:
        # attempt_count counts retries (SPEC: requeue = attempts + 1).
        changes.update(attempt_count=job.attempt_count + 1, run_after=run_after)
    else:
        changes["finished_at"] = timezone.now()
    if status == JobStatus.SUCCEEDED:
        changes.update(error_code=None, error_message=None)
    elif status in (JobStatus.FAILED, JobStatus.QUEUED):
        changes.update(error_code=error_code, error_message=error_message)
    if status == JobStatus.CANCELLED:
        # Already set when a running job stops on request; a queued one ends here.
        changes["cancel_requested"] = True
    if status == JobStatus.FAILED and failed_reason is None and not resource_intact:
        failed_reason = f"{job.job_type} failed: {error_message}"
    change_state(job, status=status, **changes)
    scopes.restore_resources(job, site, environment, spec, failed_reason)
    if status != JobStatus.SUCCEEDED:
        _run_ending_hooks(job, was_running)
    if status in AUDIT_RESULT_OF_ENDING:
        AuditEntry.objects.filter(job=job, result=AuditResult.ACCEPTED).update(
            result=AUDIT_RESULT_OF_ENDING[status], completed_at=timezone.now()
        )
    # It may have been the oldest job of its site, holding back younger ones.
    due_now = status == JobStatus.QUEUED and run_after is None
    transaction.on_commit(lambda: dispatch.wake_waiting(job, include_self=due_now))
    return job


def _run_ending_hooks(job: Job, was_running: bool) -> None:
    """The registered hooks (registry.on_unsuccessful_end), each in a savepoint:
    a hook that breaks is logged and never keeps the run from ending."""
    for hook in ending_hooks():
        try:
            with transaction.atomic():
                hook(job, was_running)
        except Exception:  # noqa: BLE001 - the job's ending is recorded whatever a hook does
            logger.exception("job %s: ending hook %s failed", job.pk, getattr(hook, "__qualname__", hook))


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
        run_after = None
        if outcome.status == "retry" and job.attempt_count < job.max_attempts:
            status, run_after = JobStatus.QUEUED, timezone.now() + _retry_backoff(job)
        elif outcome.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
            status = outcome.status
        else:  # failed, or a retry with no attempts left
            status = JobStatus.FAILED
        return end_run(
            job,
            status,
            spec=claim.spec,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            resource_intact=outcome.resource_intact,
            run_after=run_after,
            result=outcome.result,
        )


def _retry_backoff(job) -> timedelta:
    """Backoff before the next retry: 1, 5, 15 min (settings.JOB_RETRY_BACKOFF)."""
    retries = job.attempt_count + 1
    return timedelta(seconds=settings.JOB_RETRY_BACKOFF[min(retries, len(settings.JOB_RETRY_BACKOFF)) - 1])

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

def run_state(job_id, token) -> tuple[bool, bool]:
    """Without writing: (this claim still runs the job, cancel requested)."""
    row = Job.objects.filter(pk=job_id, claim_token=token, status=JobStatus.RUNNING).values_list(
        "cancel_requested", flat=True).first()
    return (row is not None, bool(row))

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
        spec = get_handler(job.job_type)
        lost_by = job.locked_by
        timed_out = job.started_at and job.started_at + timedelta(seconds=job.timeout_seconds) < timezone.now()
        if job.cancel_requested:
            end_run(job, JobStatus.CANCELLED, spec=spec)
        elif timed_out or job.attempt_count >= job.max_attempts:
            code = "job_timeout" if timed_out else "worker_lost"
            message = (
                f"Stopped after running longer than {job.timeout_seconds} s."
                if timed_out
                else f"The worker {lost_by} died and no retries are left."
            )
            end_run(job, JobStatus.FAILED, spec=spec, error_code=code, error_message=message)
        else:
            message = f"The worker {lost_by} stopped responding; running the job again."
            end_run(job, JobStatus.QUEUED, spec=spec, error_code="worker_lost", error_message=message, run_after=None)
        logger.warning("job %s: worker %s lost; job is now %s", job.pk, lost_by, job.status)
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
                message = f"Stopped after running longer than {locked.timeout_seconds} s."
                spec = get_handler(locked.job_type)
                end_run(locked, JobStatus.FAILED, spec=spec, error_code="job_timeout", error_message=message)
                failed.append(locked)
    return failed
