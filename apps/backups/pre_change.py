"""A backup taken inside another job, right before it changes an
environment (an update now; promotions and restores alike): the same node
program and records as ``backup_create``, run in the calling job's run.
Backups are refused, never skipped, when no storage is configured."""

import logging

from apps.backups import node_ops, services, storage
from apps.backups.models import Backup
from apps.jobs.errors import JobCancelled, JobClaimLost, JobError, JobTimedOut
from apps.jobs.choices import LogLevel

logger = logging.getLogger(__name__)


def take_backup(ctx, environment, scope: str, purpose: str, reason: str) -> Backup:
    """A completed Backup of ``environment`` (``scope`` db, files or full;
    ``reason`` a BackupReason), or JobError."""
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    location = config.repository_location(environment.site_id)
    backup = services.new_backup(environment, scope, reason, config)
    services.mark_running(backup, ctx.job)
    try:
        result = node_ops.create_backup(environment, backup, config, ctx=ctx)
    except JobError as exc:
        end_failed(ctx, backup, purpose, exc.code, exc.message)
        raise JobError(exc.code, f"The {purpose} backup failed, nothing was changed: {exc.message}",
                       retryable=exc.retryable, resource_intact=True) from None
    except BaseException as exc:
        # A cancel, the timeout, a lost claim (the node program was killed: no snapshot), anything else.
        end_failed(ctx, backup, purpose, *why_stopped(exc))
        raise
    # Complete in the repository: recorded so, even if the job is stopped right now.
    services.record_completed(backup, result, location)
    ctx.log(f"{purpose} backup {backup.pk} completed ({scope}, {backup.size_bytes} bytes, checksum {backup.checksum})")
    ctx.checkpoint()
    return backup


def why_stopped(exc: BaseException) -> tuple[str, str]:
    """(error code, why) of a backup stopped by something other than a JobError."""
    if isinstance(exc, JobCancelled):
        return "job_cancelled", "the job was cancelled while it ran"
    if isinstance(exc, JobTimedOut):
        return "job_timeout", "the job ran out of time while it ran"
    if isinstance(exc, JobClaimLost):
        return "worker_lost", "this run of the job lost its claim while it ran (another run took the job over)"
    return "internal_error", f"the job stopped on an unexpected error while it ran ({type(exc).__name__})"


def end_failed(ctx, backup: Backup, purpose: str, code: str, why: str) -> None:
    """A backup that did not complete ends ``failed``, never left ``running``,
    with the reason on it; the job log says why too (unless this run lost its
    claim: then it writes no log)."""
    try:
        services.mark_failed(backup, code, why)
    except Exception:  # noqa: BLE001 - the database itself may be what stopped the job
        logger.exception("could not mark backup %s failed (%s)", backup.pk, why)
        return
    lost = getattr(ctx, "claim_lost", None)
    if lost is not None and lost.is_set():
        logger.warning("%s backup %s failed: %s", purpose, backup.pk, why)
    else:
        ctx.log(f"{purpose} backup {backup.pk} failed: {why}", LogLevel.ERROR)


def repository_of(environment) -> dict:
    """The site's repository as node programs are given it (password and keys as data)."""
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT)
    return node_ops.repository_params(environment.site, config)
