"""The worker side: django-q2 calls ``run_job(job_id)``; this claims the job,
runs its handler with a heartbeat, and records the outcome."""

import logging

from django.conf import settings
from django.db import close_old_connections

from apps.jobs import services
from apps.jobs.choices import LogLevel
from apps.jobs.context import Heartbeat, JobContext, LeaseGuard
from apps.jobs.errors import JobCancelled, JobClaimLost, JobError, JobTimedOut

logger = logging.getLogger(__name__)


def run_job(job_id: str) -> str:
    """django-q2 task. Returns a word for django-q2's own records."""
    close_old_connections()
    claim = services.claim_job(job_id)
    if claim is None:
        return "not-claimed"
    context = JobContext(claim)
    beat = Heartbeat(context, settings.JOB_HEARTBEAT_INTERVAL)
    guard = LeaseGuard(context)
    beat.start()
    guard.start()
    try:
        outcome = _execute(claim, context)
    finally:
        guard.stop()
        beat.stop()
    if outcome is None:
        return "claim-lost"
    job = services.finish_job(claim, outcome)
    return job.status if job is not None else "claim-lost"


def _execute(claim, context) -> services.Outcome | None:
    job = claim.job
    retry = f" (retry {job.attempt_count} of {job.max_attempts})" if job.attempt_count else ""
    context.log(f"run {job.attempt_count + 1}{retry} on {services.worker_id()}")
    try:
        claim.spec.func(context)
        # The work is done: a cancel or the timeout noticed only now must not
        # report it as stopped (and mark the site failed). A lost claim still
        # means someone else owns the job.
        if context.claim_lost.is_set():
            raise JobClaimLost()
    except JobClaimLost:
        logger.warning("job %s: claim lost, stopping without recording", job.pk)
        return None
    except JobCancelled:
        context.log("cancelled by an operator", LogLevel.WARNING)
        return services.Outcome("cancelled", result=context.result)
    except JobTimedOut:
        message = f"Stopped after running longer than {job.timeout_seconds} s."
        context.log(message, LogLevel.ERROR)
        return services.Outcome("failed", "job_timeout", message, result=context.result)
    except JobError as exc:
        will_retry = exc.retryable and job.attempt_count < job.max_attempts
        suffix = " (will retry)" if will_retry else ""
        context.log(f"{exc.code}: {exc.message}{suffix}", LogLevel.ERROR)
        status = "retry" if exc.retryable else "failed"
        return services.Outcome(status, exc.code, exc.message, exc.resource_intact, context.result)
    except Exception as exc:  # noqa: BLE001 - any bug becomes a readable job failure
        logger.exception("job %s (%s) crashed", job.pk, job.job_type)
        message = f"Unexpected error in {job.job_type} ({type(exc).__name__}); details are in the server log."
        context.log(message, LogLevel.ERROR)
        return services.Outcome("failed", "internal_error", message, result=context.result)
    context.log("succeeded")
    return services.Outcome("succeeded", result=context.result)
