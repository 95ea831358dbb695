"""Job handlers of the backups domain."""

from apps.backups import node_ops, services, storage
from apps.backups.choices import BackupStatus
from apps.backups.models import Backup
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler


@job_handler("backup_create", timeout_seconds=2 * 60 * 60)
def backup_create(ctx):
    """Database and/or files of the environment into its site's restic
    repository, streamed on the node; the Backup row records snapshots,
    checksum and size. The environment itself is only read."""
    backup = (Backup.objects.select_related("environment__node", "environment__site")
              .filter(pk=ctx.payload["backup_id"]).first())
    if backup is None:
        ctx.log("the backup's record is gone (its environment was deleted): nothing to do")
        return
    if backup.status == BackupStatus.COMPLETED:
        ctx.log("this backup was completed by an earlier run")
        ctx.result = {"backup_id": str(backup.pk), "checksum": backup.checksum}
        return
    config = storage.configured_storage()
    if config is None:
        services.mark_failed(backup)
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    environment = backup.environment
    services.mark_running(backup)
    with ctx.step(f"{backup.backup_scope} backup of {environment.site.slug}/{environment.slug} "
                  f"to {config.repository_location(environment.site_id)}"):
        try:
            result = node_ops.create_backup(environment, backup, config, ctx=ctx)
        except JobError as exc:
            services.mark_failed(backup)
            raise JobError(exc.code, exc.message, retryable=exc.retryable, resource_intact=True) from None
    ctx.checkpoint()
    services.record_completed(backup, result, config.repository_location(environment.site_id))
    ctx.result = {"backup_id": str(backup.pk), "checksum": backup.checksum, "size_bytes": backup.size_bytes,
                  "added_bytes": backup.added_bytes,
                  "snapshots": {name: part["snapshot_id"] for name, part in backup.parts.items()}}
    ctx.log(f"backup {backup.pk} completed: {backup.size_bytes} bytes, {backup.added_bytes} new")
