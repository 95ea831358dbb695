"""Job handlers of the backups domain: backup_create (asked for, daily by
schedule), backup_cleanup (every 6 hours), and the final backups that
env_delete and site_delete take first."""

from django.db.models import Q

from apps.backups import node_ops, schedules, services, storage
from apps.backups.choices import BackupReason, BackupStatus
from apps.backups.models import Backup, BackupRepository
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler
from apps.jobs.scheduler import JobScope, recurring_job
from apps.nodes.choices import NodeStatus
from apps.nodes.models import Node
from apps.sites.models import Site

# How often the scheduler looks for environments whose daily backup is due
# (a window is at least an hour long).
SCHEDULE_EVERY_MINUTES = 10
CLEANUP_EVERY_MINUTES = 6 * 60


@job_handler("backup_create", timeout_seconds=2 * 60 * 60)
def backup_create(ctx):
    """Database and/or files of the environment into its site's restic
    repository, streamed on the node; the Backup row records snapshots,
    checksum and size. The environment itself is only read."""
    backup = (Backup.objects.select_related("environment__node", "environment__site")
              .filter(pk=ctx.payload["backup_id"]).first())
    if backup is None or backup.environment is None:
        if backup is not None and backup.status in (BackupStatus.PENDING, BackupStatus.RUNNING):
            services.mark_failed(backup)
        ctx.log("the backup's environment was deleted: nothing to do")
        return
    take_backup(ctx, backup)
    ctx.result = {"backup_id": str(backup.pk), "checksum": backup.checksum, "size_bytes": backup.size_bytes,
                  "added_bytes": backup.added_bytes,
                  "snapshots": {name: part["snapshot_id"] for name, part in backup.parts.items()}}
    ctx.log(f"backup {backup.pk} completed: {backup.size_bytes} bytes, {backup.added_bytes} new")


def take_backup(ctx, backup: Backup) -> Backup:
    """Make one pending (or failed, or half-made) backup of its environment,
    in the running job; done already: nothing to do. Raises JobError with the
    environment untouched (``resource_intact``)."""
    if backup.status == BackupStatus.COMPLETED:
        ctx.log(f"backup {backup.pk} was completed by an earlier run")
        return backup
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
    return services.record_completed(backup, result, config.repository_location(environment.site_id))


@recurring_job("backup_create", every_minutes=SCHEDULE_EVERY_MINUTES)
def scheduled_backup_scopes():
    """Environments whose daily backup is due: one scheduled backup_create
    each (the queue runs them after operators' jobs)."""
    if storage.configured_storage() is None:
        return
    for environment, schedule, window in schedules.due_environments():
        def prepare(environment=environment, scope=schedule.backup_scope):
            config = storage.configured_storage()
            backup = services.new_backup(environment, scope, BackupReason.SCHEDULED, config)
            return {"backup_id": str(backup.pk)}

        yield JobScope(
            dedup_key=f"env:{environment.pk}",
            site=environment.site,
            environment=environment,
            node=environment.node,
            payload={"backup_scope": schedule.backup_scope, "reason": BackupReason.SCHEDULED,
                     "window_start": window.isoformat()},
            prepare=prepare,
        )


def take_final_backups(ctx, environments) -> None:
    """Before env_delete or site_delete removes anything: the final backup of
    each environment, as the job's payload says (see services.final_backup_payload).
    A final backup that fails stops the deletion with nothing removed."""
    wanted = ctx.payload.get(services.FINAL_BACKUPS)
    if not wanted:
        why = ctx.payload.get(services.NO_FINAL_BACKUP) or "none was asked for"
        ctx.log(f"no final backup is taken: {why}")
        return
    for environment in environments:
        backup_id = wanted.get(str(environment.pk))
        backup = (Backup.objects.select_related("environment__node", "environment__site")
                  .filter(pk=backup_id).first() if backup_id else None)
        if backup is None:
            ctx.log(f"no final backup of {environment.slug} was asked for (it was made after the request)")
            continue
        try:
            take_backup(ctx, backup)
        except JobError as exc:
            raise JobError(
                exc.code,
                f"The final backup of {environment.slug} failed, so nothing was deleted: {exc.message} "
                "Delete again once backups work, or delete without a final backup.",
                retryable=exc.retryable, resource_intact=True,
            ) from None
        ctx.log(f"final backup of {environment.slug}: {backup.pk}, {backup.size_bytes} bytes, kept until "
                f"{backup.retention_until:%Y-%m-%d %H:%M} UTC")


# --- backup_cleanup -----------------------------------------------------------

def cleanup_node(site) -> Node | None:
    """Where a site's repository is cleaned: its production environment's
    node; for a deleted site (its final backups), an active node, the local one first."""
    if site is not None:
        environment = site.environments.select_related("node").order_by("created_at").first()
        if environment is not None:
            return environment.node
    return Node.objects.filter(status=NodeStatus.ACTIVE).order_by("-is_local", "created_at").first()


@recurring_job("backup_cleanup", every_minutes=CLEANUP_EVERY_MINUTES)
def cleanup_scopes():
    """One backup_cleanup per site repository holding backups past retention."""
    if storage.configured_storage() is None:
        return
    site_ids = services.past_retention().values_list("site_id", flat=True).distinct()
    for site_id in sorted(set(site_ids), key=str):
        site = Site.objects.filter(pk=site_id).first()
        node = cleanup_node(site)
        if node is None:
            continue
        yield JobScope(dedup_key=f"site:{site_id}", site=site, node=node, payload={"site_id": str(site_id)})


@job_handler("backup_cleanup", timeout_seconds=2 * 60 * 60)
def backup_cleanup(ctx):
    """Forget (by snapshot id and by the backup's tag) the snapshots of the
    site's backups past retention, prune what no snapshot uses any more, and
    mark those backups expired. Safe to re-run: what is gone stays gone."""
    site_id = ctx.payload["site_id"]
    due = list(services.past_retention().filter(site_id=site_id).order_by("created_at"))
    if not due:
        ctx.log("no backup of this site is past its retention")
        return
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    repository = BackupRepository.objects.filter(site_id=site_id).first()
    if repository is None:
        ctx.log("the site never had a backup repository: nothing is stored")
        services.record_purged([backup.pk for backup in due])
        return
    snapshot_ids = sorted({part["snapshot_id"] for backup in due for part in backup.parts.values()
                           if part.get("snapshot_id")})
    # A backup of unchanged files names the snapshot of an earlier one: kept while any kept backup names it.
    keep_ids = sorted({part["snapshot_id"] for backup in Backup.objects.filter(site_id=site_id, purged_at__isnull=True)
                       .exclude(pk__in=[b.pk for b in due]) for part in backup.parts.values()
                       if part.get("snapshot_id")})
    with ctx.step(f"forget {len(snapshot_ids)} snapshot(s) of {len(due)} backup(s) past retention and prune "
                  f"{config.repository_location(site_id)}"):
        result = node_ops.clean_up(ctx.job.node, repository, config, backup_ids=[str(b.pk) for b in due],
                                   snapshot_ids=snapshot_ids, keep_ids=keep_ids, ctx=ctx)
    ctx.checkpoint()
    expired = services.record_purged([backup.pk for backup in due])
    kept = Backup.objects.filter(Q(site_id=site_id), Q(status=BackupStatus.COMPLETED)).count()
    ctx.result = {"expired": expired, "forgotten_snapshots": result.get("forgotten", []),
                  "snapshots_left": result.get("snapshots_left"), "backups_kept": kept}
    ctx.log(f"{expired} backup(s) expired; {len(result.get('forgotten', []))} snapshot(s) forgotten; "
            f"{kept} completed backup(s) of the site kept")

