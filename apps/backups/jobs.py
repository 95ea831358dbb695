"""Job handlers of the backups domain."""

from apps.backups import node_ops, services, storage
from apps.backups.choices import BackupStatus
from apps.backups.models import Backup
from apps.core.choices import LifecycleStatus
from apps.environments import naming, releases
from apps.environments import services as environment_services
from apps.environments import node_ops as node_ops_env
from apps.environments.choices import EnvironmentType, ReleaseSourceType
from apps.environments.models import Environment
from apps.jobs.choices import LogLevel
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler
from apps.jobs.scheduler import JobScope, recurring_job


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


NON_PRODUCTION_OPTIONS = {"blog_public": "0"}  # as env_create sets them: a copy asks not to be indexed


@job_handler("env_restore", running_status=LifecycleStatus.RESTORING, timeout_seconds=4 * 60 * 60)
def env_restore(ctx):
    """Put a backup back into the environment: verify it, take a pre-restore
    full backup, restore files (a new release, the uploads) and/or the
    database (a fresh one, swapped in), rewrite URLs when it came from another
    environment, purge caches, check health; unhealthy or failed: the
    previous release, uploads and database are put back."""
    environment = Environment.objects.select_related("node", "site", "current_release").get(pk=ctx.job.environment_id)
    backup = (Backup.objects.select_related("environment__site", "environment__node")
              .filter(pk=ctx.payload["backup_id"]).first())
    if backup is None:
        raise JobError("backup_not_restorable", "The backup's record is gone; nothing was changed.",
                       resource_intact=True)
    problem = services.restorable_problem(backup, environment)
    if problem is not None:
        raise JobError("backup_not_restorable", f"{problem.message} Nothing was changed.", resource_intact=True)
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    new_environment = bool(ctx.payload.get("new_environment"))
    work = ctx.job.pk.hex
    parts = node_ops.restore_parts(backup)
    # Cleanup only once fetch has passed: a refused fetch made nothing to clean, and what an
    # earlier restore kept aside (the reason fetch may refuse) must stay for an operator.
    state = {"swapped": False, "cleanup": False}
    try:
        _restore(ctx, environment, backup, config, parts, work, new_environment, state)
    finally:
        # Never while the restored state is live and unjudged: what was kept aside is the way back.
        if state["cleanup"] and not state["swapped"]:
            try:
                cleaned = node_ops.restore_phase(environment, "cleanup", work=work, ctx=ctx)
            except JobError as exc:
                ctx.log(f"cleaning up after the restore failed: {exc.message}", LogLevel.WARNING)
            else:
                # Releases beyond the last 5 went: no rollback may aim at them.
                releases.forget_pruned(environment, cleaned.get("pruned") or [])


def _restore(ctx, environment, backup, config, parts, work, new_environment, state):
    what = "+".join(sorted(parts))
    with ctx.step(f"verify backup {backup.pk} ({what}) against its checksum {backup.checksum}"):
        try:
            node_ops.restore_phase(environment, "fetch", work=work, ctx=ctx, parts=parts,
                                   repository=node_ops.repository_params(environment.site, config))
        except JobError as exc:
            raise JobError(exc.code, f"{exc.message} (nothing was changed)", retryable=exc.retryable,
                           resource_intact=True) from None
    state["cleanup"] = True
    pre_restore = None
    if not new_environment:
        with ctx.step("pre-restore full backup"):
            pre_restore = services.start_pre_restore_backup(environment, config)
            try:
                result = node_ops.create_backup(environment, pre_restore, config, ctx=ctx)
            except JobError as exc:
                services.mark_failed(pre_restore)
                raise JobError(exc.code, f"the pre-restore backup failed, so nothing was restored: {exc.message}",
                               retryable=exc.retryable, resource_intact=True) from None
            services.record_completed(pre_restore, result, config.repository_location(environment.site_id))
            ctx.log(f"pre-restore backup {pre_restore.pk}: {pre_restore.size_bytes} bytes")
    ctx.checkpoint()
    previous = environment.current_release
    release_name = ctx.payload.get("release") or naming.new_release_name()
    apply_params = {"parts": parts, "release": release_name, "db_password": environment.db_password}
    if backup.environment_id != environment.pk:
        apply_params["rewrite"] = {"from_url": backup.environment.preview_url,
                                   "from_system_name": naming.system_name(backup.environment)}
    if environment.environment_type != EnvironmentType.PRODUCTION:
        apply_params["wp_options"] = NON_PRODUCTION_OPTIONS
    ctx.result = {"backup_id": str(backup.pk), "backup_scope": backup.backup_scope,
                  "pre_restore_backup_id": str(pre_restore.pk) if pre_restore else None}
    # From here the live site changes: no safe point until it is healthy or put back.
    state["swapped"] = True
    ctx.log(f"restore {what} of backup {backup.pk} into {environment.slug}", LogLevel.STEP)
    try:
        applied = node_ops.restore_phase(environment, "apply", work=work, ctx=ctx, **apply_params)
    except JobError as exc:
        ctx.log(f"the restore failed: {exc.message}", LogLevel.ERROR)
        _put_back(ctx, environment, previous, release_name, state)
        raise JobError(exc.code, f"The restore failed ({exc.message}); the previous release, uploads and database "
                       "are back.", resource_intact=True) from None
    release = None
    if applied.get("release"):
        release = releases.record_release(environment, applied["release"], ReleaseSourceType.BACKUP,
                                          f"backup {backup.pk}")
        releases.make_current(environment, release)
    ctx.result.update(release=applied.get("release"), database=bool(applied.get("database")),
                      uploads=bool(applied.get("uploads")), url_rewrite=applied.get("url_rewrite"))
    ctx.log("health check of the restored site", LogLevel.STEP)
    report = node_ops_env.check_health(environment, ctx, fatal_errors_since=applied.get("switched_at"))
    if release is not None:
        releases.record_health(release, report.healthy)
    if report.healthy:
        state["swapped"] = False
        ctx.log(f"backup {backup.pk} restored into {environment.slug}; healthy")
        return
    ctx.log(f"the restored site is unhealthy: {report.problem}", LogLevel.ERROR)
    _put_back(ctx, environment, previous, release_name, state)
    raise JobError("health_check_failed", f"The restored site was unhealthy ({report.problem}); the previous "
                   "release, uploads and database are back.", resource_intact=True)


def _put_back(ctx, environment, previous, release_name, state):
    """Undo the restore's swaps; a failure here leaves what was kept aside for an operator."""
    ctx.log("put the previous release, uploads and database back", LogLevel.STEP)
    try:
        node_ops.restore_phase(environment, "revert", work=ctx.job.pk.hex, ctx=ctx,
                               previous_release=previous.directory if previous else None, release=release_name)
    except JobError as exc:
        state["cleanup"] = False
        raise JobError("rollback_failed", f"Putting the previous state back failed: {exc.message}. The previous "
                       "tables and uploads are kept aside on the node (<name>_prerestore, shared/.uploads-previous).") \
            from None
    if previous is not None:
        releases.make_current(environment, previous)
    releases.forget_pruned(environment, [release_name])
    report = node_ops_env.check_health(environment, ctx)
    state["swapped"] = False
    if previous is not None:
        releases.record_health(previous, report.healthy)
    if not report.healthy:
        raise JobError("rollback_failed", f"The previous state is back, but it is unhealthy too: {report.problem}.")
    ctx.log("the previous release, uploads and database are back and healthy")


@recurring_job("backup_drill", every_minutes=60)
def backup_drill_scopes():
    """Each site whose drill is due (weekly by default): one backup_drill, as scheduled work."""
    for site, production, backup in services.drill_due_sites():
        yield JobScope(dedup_key=f"site:{site.pk}", site=site, node=production.node,
                       payload={"backup_id": str(backup.pk)})


@job_handler("backup_drill", timeout_seconds=4 * 60 * 60)
def backup_drill(ctx):
    """The restore drill: the backup restored into a throwaway copy of
    production (its checksum verified, URLs rewritten), health checked, the
    verdict recorded on the backup (``verified_at`` or why not), the
    throwaway removed. Production is only read."""
    backup = (Backup.objects.select_related("environment__site", "environment__node")
              .filter(pk=ctx.payload["backup_id"]).first())
    if backup is None:
        ctx.log("the backup's record is gone: nothing to verify")
        return
    site = backup.environment.site
    production = site.environments.filter(environment_type=EnvironmentType.PRODUCTION).select_related("node").first()
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    problem = services.restorable_problem(backup, production)
    if problem is not None:
        raise JobError("backup_not_restorable", problem.message, resource_intact=True)
    throwaway = environment_services.create_throwaway_environment(production, f"drill-{ctx.job.pk.hex[:8]}")
    ctx.log(f"throwaway environment {throwaway.slug} at {throwaway.preview_url}")
    ctx.result = {"backup_id": str(backup.pk), "throwaway": throwaway.slug, "throwaway_id": str(throwaway.pk)}
    try:
        verdict = _drill(ctx, backup, production, throwaway, config)
    except JobError as exc:
        verdict = exc
    finally:
        with ctx.step(f"remove the throwaway environment {throwaway.slug}"):
            node_ops_env.teardown(throwaway, ctx)
            environment_services.remove_environment_records([throwaway.pk])
    if isinstance(verdict, JobError):
        services.record_drill(backup, False, verdict.message)
        raise JobError(verdict.code, f"Restore drill of backup {backup.pk} failed: {verdict.message}",
                       resource_intact=True)
    services.record_drill(backup, True, verdict)
    ctx.result["verified"] = True
    ctx.log(f"backup {backup.pk} verified: {verdict}")


def _drill(ctx, backup, production, throwaway, config) -> str:
    with ctx.step(f"copy {production.slug} into the throwaway environment"):
        result = node_ops_env.clone(throwaway, production, release=naming.new_release_name(),
                                    wp_options=NON_PRODUCTION_OPTIONS, ctx=ctx)
    releases.make_current(throwaway, releases.record_release(throwaway, result["release"], ReleaseSourceType.CORE,
                                                             f"copy of {production.slug}"))
    parts = node_ops.restore_parts(backup)
    work = ctx.job.pk.hex
    try:
        with ctx.step(f"verify backup {backup.pk} against its checksum {backup.checksum}"):
            node_ops.restore_phase(throwaway, "fetch", work=work, ctx=ctx, parts=parts,
                                   repository=node_ops.repository_params(throwaway.site, config))
        with ctx.step(f"restore {'+'.join(sorted(parts))} into {throwaway.slug}"):
            node_ops.restore_phase(
                throwaway, "apply", work=work, ctx=ctx, parts=parts, release=naming.new_release_name(),
                db_password=throwaway.db_password, wp_options=NON_PRODUCTION_OPTIONS,
                rewrite={"from_url": backup.environment.preview_url,
                         "from_system_name": naming.system_name(backup.environment)},
            )
        with ctx.step("health check of the restored copy"):
            report = node_ops_env.check_health(throwaway, ctx)
    finally:
        try:
            node_ops.restore_phase(throwaway, "cleanup", work=work, ctx=ctx)
        except JobError as exc:
            ctx.log(f"cleaning up after the drill failed: {exc.message}", LogLevel.WARNING)
    if not report.healthy:
        raise JobError("health_check_failed", f"the restored copy is unhealthy: {report.problem}")
    return f"restored into a throwaway copy and healthy (HTTP {report.http_status})"
