"""A backup taken inside another job, right before it changes an
environment (an update now; promotions and restores alike): the same node
program and records as ``backup_create``, run in the calling job's run.
Backups are refused, never skipped, when no storage is configured."""

from apps.backups import node_ops, services, storage
from apps.backups.models import Backup
from apps.jobs.errors import JobError


def take_backup(ctx, environment, scope: str, purpose: str, reason: str) -> Backup:
    """A completed Backup of ``environment`` (``scope`` db, files or full;
    ``reason`` a BackupReason), or JobError."""
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    location = config.repository_location(environment.site_id)
    backup = services.new_backup(environment, scope, reason, config)
    services.mark_running(backup)
    try:
        result = node_ops.create_backup(environment, backup, config, ctx=ctx)
    except JobError as exc:
        services.mark_failed(backup)
        raise JobError(exc.code, f"The {purpose} backup failed, nothing was changed: {exc.message}",
                       retryable=exc.retryable, resource_intact=True) from None
    ctx.checkpoint()
    services.record_completed(backup, result, location)
    ctx.log(f"{purpose} backup {backup.pk} completed ({scope}, {backup.size_bytes} bytes, checksum {backup.checksum})")
    return backup


def repository_of(environment) -> dict:
    """The site's repository as node programs are given it (password and keys as data)."""
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT)
    return node_ops.repository_params(environment.site, config)
