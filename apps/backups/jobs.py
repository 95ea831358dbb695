"""Job handlers of the backups domain: backup_create (asked for, daily by
schedule), backup_cleanup (every 6 hours), the final backups that
env_delete and site_delete take first, env_restore (and restore_cleanup after
it), backup_drill."""

from django.db.models import Q

from apps.backups import node_ops, pre_change, schedules, services, storage
from apps.backups.choices import BackupReason, BackupStatus
from apps.backups.models import Backup, BackupRepository
from apps.core.choices import LifecycleStatus
from apps.environments import naming, releases
from apps.environments import services as environment_services
from apps.environments import node_ops as node_ops_env
from apps.environments.choices import EnvironmentType, ReleaseSourceType
from apps.environments.models import Environment
from apps.jobs.choices import JobStatus, LogLevel
from apps.jobs.models import Job
from apps.jobs.errors import JOB_ERROR_CODES, JobError
from apps.jobs.registry import job_handler, on_unsuccessful_end
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
            services.mark_failed(backup, "backup_environment_deleted", services.ENVIRONMENT_DELETED)
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
        services.mark_failed(backup, "backup_storage_not_configured", storage.NOT_CONFIGURED_HINT)
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    environment = backup.environment
    services.mark_running(backup, ctx.job)
    with ctx.step(f"{backup.backup_scope} backup of {environment.site.slug}/{environment.slug} "
                  f"to {config.repository_location(environment.site_id)}"):
        try:
            result = node_ops.create_backup(environment, backup, config, ctx=ctx)
        except JobError as exc:
            services.mark_failed(backup, exc.code, exc.message)
            raise JobError(exc.code, exc.message, retryable=exc.retryable, resource_intact=True) from None
        except BaseException as exc:  # a cancel, the timeout, a lost claim: never left running
            pre_change.end_failed(ctx, backup, backup.reason, *pre_change.why_stopped(exc))
            raise
    services.record_completed(backup, result, config.repository_location(environment.site_id))
    ctx.checkpoint()
    return backup


@on_unsuccessful_end
def fail_unfinished_backups(job, was_running):
    """Whatever ends a job other than by success — a cancel (before it ran
    too), its timeout, a dead worker, a refusal at its claim — the backups it
    was taking or was asked to take do not stay pending or running: they fail
    with the job's reason (services.fail_unfinished_backups)."""
    services.fail_unfinished_backups(job, was_running)


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


# --- restore and the restore drill ----------------------------------------------

NON_PRODUCTION_OPTIONS = {"blog_public": "0"}  # as env_create sets them: a copy asks not to be indexed


@job_handler("env_restore", running_status=LifecycleStatus.RESTORING, timeout_seconds=4 * 60 * 60)
def env_restore(ctx):
    """Put a backup back into the environment: verify it, take a pre-restore
    full backup, restore files (a new release, the uploads) and/or the
    database (a fresh one, swapped in), rewrite URLs when it came from another
    environment, purge caches, check health; unhealthy or failed: the
    previous release, uploads and database are put back. Healthy: the job
    ends there and ``restore_cleanup``, queued as the site's next job,
    removes what was kept aside for the way back."""
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
    restore_backup(ctx, environment, backup, config, release=ctx.payload.get("release") or naming.new_release_name(),
                   pre_restore=not ctx.payload.get("new_environment"), result=ctx.result, defer_cleanup=True)


def restore_backup(ctx, environment, backup, config, *, release: str, pre_restore: bool = True,
                   result: dict | None = None, defer_cleanup: bool = False) -> dict:
    """``backup`` (checked restorable by the caller) restored into ``environment``
    in the running job: env_restore's, or another job's that must put an
    environment back (env_promote, when its swap back failed). ``release`` is
    the new release's name (a job other than env_restore passes its own: its
    payload's ``release`` is its own business); the work directory on the node
    is the job's id. What it did goes into ``result`` as it goes (and is
    returned); a failure is JobError, as env_restore reports it. ``defer_cleanup``:
    once healthy, what was kept aside for the way back is removed by a
    ``restore_cleanup`` job queued next on the site, not by this one."""
    result = {} if result is None else result
    work = ctx.job.pk.hex
    parts = node_ops.restore_parts(backup)
    # Cleanup only once the checks have passed: a refused restore removed what it built itself, and what an
    # earlier restore kept aside (a reason it may refuse) must stay for an operator.
    state = {"swapped": False, "cleanup": False}
    try:
        _restore(ctx, environment, backup, config, parts, work, not pre_restore, state, release, result)
    finally:
        # Never while the restored state is live and unjudged: what was kept aside is the way back.
        if state["cleanup"] and not state["swapped"] and defer_cleanup and state.get("healthy"):
            follow = services.queue_restore_cleanup(environment, ctx.job)
            result["cleanup_job_id"] = str(follow.pk)
            ctx.log(f"what the restore kept aside for its way back is removed by restore_cleanup {follow.pk}, "
                    "the site's next job")
        elif state["cleanup"] and not state["swapped"]:
            try:
                cleaned = node_ops.restore_phase(environment, "cleanup", work=work, ctx=ctx)
            except JobError as exc:
                ctx.log(f"cleaning up after the restore failed: {exc.message}", LogLevel.WARNING)
            else:
                # Releases beyond the last 5 went: no rollback may aim at them.
                releases.forget_pruned(environment, cleaned.get("pruned") or [])
    return result


def _restore(ctx, environment, backup, config, parts, work, new_environment, state, release_name, result):
    what = "+".join(sorted(parts))
    # One node run: the checks in the one read that also builds the release, unpacks the uploads and loads
    # the fresh database beside the live site, the pre-restore backup beside (both only read the live site),
    # then the swaps. A refusal leaves the live site untouched and no pre-restore backup (the node forgets
    # what it stored); a failed pre-restore backup restores nothing.
    pre_restore, params = None, {"parts": parts, "release": release_name, "db_password": environment.db_password,
                                 "repository": node_ops.repository_params(environment.site, config)}
    if not new_environment:
        pre_restore = services.start_pre_restore_backup(environment, config, ctx.job)
        params["pre_restore"] = node_ops.backup_params(environment, pre_restore, config)
    if backup.environment_id != environment.pk:
        params["rewrite"] = services.rewrite_source(backup)  # checked by restorable_problem
    if environment.environment_type != EnvironmentType.PRODUCTION:
        params["wp_options"] = NON_PRODUCTION_OPTIONS
    previous = environment.current_release
    result.update(backup_id=str(backup.pk), backup_scope=backup.backup_scope,
                  pre_restore_backup_id=str(pre_restore.pk) if pre_restore else None)
    ctx.log(f"verify backup {backup.pk} ({what}) against its checksum {backup.checksum} as it is unpacked beside "
            f"{environment.slug}" + (", take the pre-restore full backup beside it" if pre_restore else "")
            + ", then restore it into " + environment.slug, LogLevel.STEP)
    try:
        applied = node_ops.restore_phase(environment, "restore", work=work, ctx=ctx, **params)
    except JobError as exc:
        if pre_restore is not None:
            services.discard_pre_restore_backup(pre_restore)
        if exc.code in ("node_busy", "claim_stale"):  # refused before it started
            raise JobError(exc.code, f"{exc.message} (nothing was changed)", retryable=exc.retryable,
                           resource_intact=True) from None
        # Stopped where it cannot say how far it got: put back whatever it swapped (judged on the node).
        ctx.log(f"the restore failed: {exc.message}", LogLevel.ERROR)
        state.update(cleanup=True, swapped=True)
        _put_back(ctx, environment, previous, release_name, state, work)
        raise JobError(exc.code, f"The restore failed ({exc.message}); the previous release, uploads and database "
                       "are back.", resource_intact=True) from None
    refused = applied.get("refused")
    if refused:
        if pre_restore is not None:
            services.discard_pre_restore_backup(pre_restore)
        code = refused.get("code") if refused.get("code") in JOB_ERROR_CODES else "remote_step_failed"
        raise JobError(code, f"{refused.get('message')} (nothing was changed)", retryable=bool(refused.get("retryable")),
                       resource_intact=True)
    if pre_restore is not None:
        made, failure = applied.get("pre_restore"), applied.get("pre_restore_error") or {}
        if not made:
            code = failure.get("code") if failure.get("code") in JOB_ERROR_CODES else "remote_step_failed"
            services.mark_failed(pre_restore, code, failure.get("message") or "the node reported no result")
            raise JobError(code, "the pre-restore backup failed, so nothing was restored: "
                           f"{failure.get('message') or 'the node reported no result'}",
                           retryable=bool(failure.get("retryable")), resource_intact=True)
        services.record_completed(pre_restore, made, config.repository_location(environment.site_id))
        ctx.log(f"pre-restore backup {pre_restore.pk}: {pre_restore.size_bytes} bytes")
    # From here the live site has changed: no safe point until it is healthy or put back.
    state.update(cleanup=True, swapped=True)
    failed = applied.get("failed")
    if failed:
        ctx.log(f"the restore failed: {failed.get('message')}", LogLevel.ERROR)
        _put_back(ctx, environment, previous, release_name, state, work)
        code = failed.get("code") if failed.get("code") in JOB_ERROR_CODES else "remote_step_failed"
        raise JobError(code, f"The restore failed ({failed.get('message')}); the previous release, uploads and "
                       "database are back.", resource_intact=True)
    release = None
    if applied.get("release"):
        release = releases.record_release(environment, applied["release"], ReleaseSourceType.BACKUP,
                                          f"backup {backup.pk}")
        releases.make_current(environment, release)
    result.update(release=applied.get("release"), database=bool(applied.get("database")),
                  uploads=bool(applied.get("uploads")), url_rewrite=applied.get("url_rewrite"))
    ctx.log("health check of the restored site", LogLevel.STEP)
    report = node_ops_env.check_health(environment, ctx, fatal_errors_since=applied.get("switched_at"))
    if release is not None:
        releases.record_health(release, report.healthy)
    if report.healthy:
        state.update(swapped=False, healthy=True)
        ctx.log(f"backup {backup.pk} restored into {environment.slug}; healthy")
        return
    ctx.log(f"the restored site is unhealthy: {report.problem}", LogLevel.ERROR)
    _put_back(ctx, environment, previous, release_name, state, work)
    raise JobError("health_check_failed", f"The restored site was unhealthy ({report.problem}); the previous "
                   "release, uploads and database are back.", resource_intact=True)


def _put_back(ctx, environment, previous, release_name, state, work):
    """Undo the restore's swaps; a failure here leaves what was kept aside for an operator."""
    ctx.log("put the previous release, uploads and database back", LogLevel.STEP)
    try:
        node_ops.restore_phase(environment, "revert", work=work, ctx=ctx,
                               previous_release=previous.directory if previous else None, release=release_name,
                               db_password=environment.db_password)
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


@job_handler("restore_cleanup", timeout_seconds=60 * 60)
def restore_cleanup(ctx):
    """What a restore judged healthy kept aside for its way back (the previous
    tables, the previous uploads, scratch left) removed, and releases beyond
    the last 5 pruned: env_restore queues it as its job ends, as the site's
    next job. The environment is only tidied: its live state is not touched."""
    environment = Environment.objects.select_related("node").filter(pk=ctx.job.environment_id).first()
    if environment is None:
        ctx.log("the environment was deleted: nothing to remove")
        return
    restore = Job.objects.filter(pk=ctx.payload.get("restore_job_id"), job_type="env_restore",
                                 environment_id=environment.pk, status=JobStatus.SUCCEEDED).first()
    if restore is None:
        ctx.log("this cleanup names no restore of this environment that succeeded: nothing removed")
        return
    later = Job.objects.filter(environment_id=environment.pk, job_type__in=("env_restore", "env_promote"),
                               started_at__gt=restore.finished_at).exclude(pk=ctx.job.pk)
    if later.exists():
        ctx.log("a later restore or promotion of this environment ran since: what is aside now is its own, "
                "left alone")
        return
    with ctx.step(f"remove what restore {restore.pk} kept aside (the previous tables and uploads)"):
        cleaned = node_ops.restore_phase(environment, "cleanup", work=restore.pk.hex, ctx=ctx)
    releases.forget_pruned(environment, cleaned.get("pruned") or [])
    ctx.result = {"restore_job_id": str(restore.pk), "pruned": cleaned.get("pruned") or []}


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
    site = Site.objects.filter(pk=backup.site_id).first()
    production = (site.environments.filter(environment_type=EnvironmentType.PRODUCTION).select_related("node").first()
                  if site is not None else None)
    if production is None:
        raise JobError("backup_not_restorable", "The backup's site has no production environment to copy for the "
                       "drill.", resource_intact=True)
    config = storage.configured_storage()
    if config is None:
        raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT, resource_intact=True)
    problem = services.restorable_problem(backup, production)
    if problem is not None:
        raise JobError("backup_not_restorable", problem.message, resource_intact=True)
    throwaway = environment_services.create_throwaway_environment(production, services.drill_throwaway_slug(ctx.job))
    ctx.log(f"throwaway environment {throwaway.slug} at {throwaway.preview_url}")
    ctx.result = {"backup_id": str(backup.pk), "throwaway": throwaway.slug, "throwaway_id": str(throwaway.pk)}
    try:
        verdict = _drill(ctx, backup, production, throwaway, config)
    except JobError as exc:
        verdict = exc
    finally:
        # No final backup: the throwaway is a copy of production made by this job.
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
        with ctx.step(f"verify backup {backup.pk} against its checksum {backup.checksum} and restore "
                      f"{'+'.join(sorted(parts))} into {throwaway.slug}"):
            applied = node_ops.restore_phase(
                throwaway, "restore", work=work, ctx=ctx, parts=parts, release=naming.new_release_name(),
                repository=node_ops.repository_params(throwaway.site, config),
                db_password=throwaway.db_password, wp_options=NON_PRODUCTION_OPTIONS,
                rewrite=services.rewrite_source(backup),
            )
        problem = applied.get("refused") or applied.get("failed")
        if problem:
            code = problem.get("code") if problem.get("code") in JOB_ERROR_CODES else "remote_step_failed"
            raise JobError(code, problem.get("message") or "the restore reported no result")
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
