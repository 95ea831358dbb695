"""Job handlers of the environments domain."""

import http.client

from apps.backups import services as backups
from apps.backups.jobs import take_final_backups
from apps.core.choices import LifecycleStatus
from apps.core.state import change_state
from apps.environments import drift, naming, node_ops, releases, services, updates
from apps.environments.choices import DriftStatus, EnvironmentType, ReleaseSourceType
from apps.environments.models import DeployArchive, Environment
from apps.jobs.choices import LogLevel
from apps.jobs.errors import JobCancelled, JobError, JobTimedOut
from apps.jobs.registry import job_handler
from apps.jobs.scheduler import JobScope, recurring_job


@job_handler("health_check")
def health_check(ctx):
    """HTTP 200 from the environment's URL (asked at the node's IP), WordPress
    installed, database reachable; the current release's health is recorded."""
    environment = Environment.objects.select_related("node", "current_release").get(pk=ctx.job.environment_id)
    with ctx.step(f"check {environment.preview_url}"):
        report = node_ops.check_health(environment, ctx)
    if environment.current_release is not None:
        releases.record_health(environment.current_release, report.healthy)
    ctx.result = {
        "healthy": report.healthy,
        "http_status": report.http_status,
        "installed": report.installed,
        "database": report.database,
    }
    if not report.healthy:
        # The environment itself is left as it is: a check changes nothing.
        raise JobError("health_check_failed", f"Unhealthy: {report.problem}.", resource_intact=True)
    ctx.log("healthy")


# WordPress settings every non-production environment gets: search engines
# are asked not to index a copy (blog_public 0 = "discourage search engines").
NON_PRODUCTION_OPTIONS = {"blog_public": "0"}


@job_handler("env_create", running_status=LifecycleStatus.CLONING, marks_source="source_environment_id")
def env_create(ctx):
    """Make the new environment a full copy of its source on the same node,
    rewrite the source's URLs to its preview URL, check its health."""
    environment = Environment.objects.select_related("node", "site").get(pk=ctx.job.environment_id)
    source = Environment.objects.select_related("node").get(
        pk=ctx.payload.get("source_environment_id") or environment.source_environment_id
    )
    release_name = ctx.payload.get("release") or naming.new_release_name(ctx.job.created_at)
    options = NON_PRODUCTION_OPTIONS if environment.environment_type != EnvironmentType.PRODUCTION else {}
    _record_baseline(ctx, environment, source)
    with ctx.step(f"copy {source.slug} to {environment.slug} at {environment.preview_url} on {environment.node.name}"):
        result = node_ops.clone(environment, source, release=release_name, wp_options=options, ctx=ctx)
    # The code is the source's current release, copied: say where it came from.
    origin = source.current_release
    release = releases.record_release(
        environment,
        result["release"],
        origin.source_type if origin else ReleaseSourceType.CORE,
        f"copy of {source.slug}/{result.get('copied_release') or (origin.directory if origin else '?')}",
    )
    releases.make_current(environment, release)
    with ctx.step("health check"):
        report = node_ops.check_health(environment, ctx)
    releases.record_health(release, report.healthy)
    if not report.healthy:
        raise JobError("health_check_failed", f"The new environment is not healthy: {report.problem}.")
    remaining = result.get("remaining")
    ctx.result = {
        "preview_url": environment.preview_url,
        "release": release.directory,
        "source_environment_id": str(source.pk),
        "url_rewrite": {"rewritten": bool(result.get("rewritten")), "rows_changed": result.get("rows_changed"),
                        "remaining": remaining},
    }
    if remaining is None:
        ctx.log("URLs were not rewritten: the node has no search-replace program")
    elif sum(remaining.values()):
        ctx.log(f"URL rewrite left {sum(remaining.values())} occurrence(s) of the source URL: {remaining}")
    else:
        ctx.log("URL rewrite: no occurrence of the source URL left")
    ctx.log(f"{environment.slug} is up at {environment.preview_url}")


def _record_baseline(ctx, environment, source):
    """Production's checksums before the copy starts: a change made while it
    runs then shows as drift instead of being overwritten by a promotion.
    A failed measurement does not stop the copy; its drift stays unknown.
    A re-run keeps the baseline an earlier attempt took: that one is older than
    any copy this job made, so it can only over-report drift, never hide it."""
    with ctx.step(f"baseline of {source.slug} for drift checks"):
        earlier = drift.current_baseline(environment)
        if earlier is not None:
            ctx.log(f"drift baseline {earlier.origin} of an earlier attempt kept, taken "
                    f"{earlier.taken_at:%Y-%m-%d %H:%M:%S}")
            return
        try:
            baseline = drift.record_baseline(environment, source, ctx)
        except JobError as exc:
            ctx.log(f"no drift baseline: {exc.message}", LogLevel.ERROR)
            return
        if baseline is None:
            ctx.log(f"no drift baseline: {source.slug} is not production and has none to inherit")
        else:
            tables = len(baseline.checksums.get("tables") or {})
            ctx.log(f"drift baseline {baseline.origin}: {tables} tables, "
                    f"{len(baseline.checksums.get('code') or {})} code paths, taken {baseline.taken_at:%Y-%m-%d %H:%M:%S}")
    ctx.checkpoint()


@job_handler("drift_check", timeout_seconds=60 * 60)
def drift_check(ctx):
    """The site's production measured now (tables and paths, on the node) and
    compared with the environment's baseline; an immutable DriftCheck and the
    environment's drift status record the outcome. Changes nothing on the node."""
    environment = Environment.objects.select_related("node", "site").get(pk=ctx.job.environment_id)
    baseline = drift.current_baseline(environment)
    if baseline is None:
        raise JobError("drift_no_baseline", "The environment has no baseline of production to compare with.",
                       resource_intact=True)
    production = drift.production_of(environment)
    with ctx.step(f"checksum {production.slug} ({environment.promotion_preset})"):
        try:
            measured = node_ops.checksums(production, ctx)
        except JobError as exc:
            # Only a measurement failed: neither environment changed.
            raise JobError(exc.code, exc.message, retryable=exc.retryable, resource_intact=True) from None
    ctx.checkpoint()
    check = drift.record_check(environment, production, baseline, measured, job=ctx.job)
    ctx.result = {"drift_check_id": str(check.pk), "result": check.result, "baseline_id": str(baseline.pk),
                  "blocking_tables": check.report["blocking_tables"], "code_changes": check.report["code_changes"]}
    ctx.log(drift.summary(check.report))


@job_handler("env_refresh", running_status=LifecycleStatus.CLONING, timeout_seconds=2 * 60 * 60)
def env_refresh(ctx):
    """Production's protected tables (by the environment's preset) and uploads
    copied into a staging or clone environment, production's URLs rewritten
    to its own; its code, settings and other tables stay. Production's
    checksums, taken first, become the environment's drift baseline."""
    environment = Environment.objects.select_related("node", "site").get(pk=ctx.job.environment_id)
    production = drift.production_of(environment)
    with ctx.step(f"refresh {environment.slug} from {production.slug} ({environment.promotion_preset})"):
        result = node_ops.refresh_from_production(environment, production, ctx=ctx)
    ctx.checkpoint()
    baseline = drift.record_refresh_baseline(environment, production, result["baseline"])
    with ctx.step("purge the caches"):
        node_ops.purge_caches(environment, ctx)
    with ctx.step("health check"):
        report = node_ops.check_health(environment, ctx)
    if environment.current_release is not None:
        releases.record_health(environment.current_release, report.healthy)
    rewrite = result.get("url_rewrite") or {}
    ctx.result = {"tables": result.get("tables"), "baseline_id": str(baseline.pk),
                  "url_rewrite": {"rewritten": bool(rewrite.get("rewritten")), "rows_changed": rewrite.get("rows_changed"),
                                  "remaining": rewrite.get("remaining")}}
    if not report.healthy:
        raise JobError("health_check_failed", f"Refreshed, but the environment is not healthy: {report.problem}.")
    ctx.log(f"{environment.slug} holds production's {len(result.get('tables') or [])} protected table(s) and uploads; "
            "new drift baseline taken, drift unknown until the next check")


@job_handler("env_delete")
def env_delete(ctx):
    """Remove a staging or clone environment from its node, then its records."""
    environment = Environment.objects.select_related("node").filter(pk=ctx.payload.get("environment_id")).first()
    if environment is None:
        ctx.log("the environment's records are gone already: nothing left to do")
        return
    take_final_backups(ctx, [environment])
    ctx.checkpoint()
    with ctx.step(f"remove environment {environment.slug} from {environment.node.name}"):
        node_ops.teardown(environment, ctx)
    ctx.checkpoint()
    services.remove_environment_records([environment.pk])
    ctx.log(f"environment {environment.slug} deleted")


@recurring_job("env_delete", every_minutes=10)
def expired_environment_scopes():
    """Clones may expire: each expired one gets an env_delete job (one at a
    time), with a final backup as any deletion (no operator opted out) but a
    restore drill's throwaway."""
    for environment in services.expired_environments():
        yield JobScope(
            dedup_key=f"env:{environment.pk}",
            site=environment.site,
            environment=environment,
            node=environment.node,
            payload={"environment_id": str(environment.pk), "slug": environment.slug, "reason": "expired"},
            prepare=lambda environment=environment: expired_final_backup(environment),
        )


def expired_final_backup(environment) -> dict:
    """An expired environment goes with a final backup, unless it is a restore
    drill's throwaway copy (its drill died before removing it)."""
    if backups.is_drill_throwaway(environment):
        return {backups.NO_FINAL_BACKUP: "a restore drill's throwaway copy of production"}
    return backups.final_backup_payload([environment], True)


@job_handler("env_deploy", running_status=LifecycleStatus.DEPLOYING)
def env_deploy(ctx):
    """New release from a git ref or an uploaded archive; switch; health
    check; roll back by itself if unhealthy."""
    environment = Environment.objects.select_related("node", "current_release").get(pk=ctx.job.environment_id)
    previous = environment.current_release
    source_type = ctx.payload.get("source_type", ReleaseSourceType.GIT)
    try:
        if source_type == ReleaseSourceType.UPLOAD:
            archive = DeployArchive.objects.filter(pk=ctx.payload["archive_id"]).first()
            if archive is None or not archive.stored_path.exists():
                raise JobError("deploy_source_failed", "The uploaded archive is no longer stored; upload it again.")
            result = node_ops.deploy_archive(environment, archive, release=ctx.payload["release"], ctx=ctx)
        else:
            result = node_ops.deploy_git(
                environment, release=ctx.payload["release"], repository=ctx.payload["repository"],
                ref=ctx.payload["ref"], ctx=ctx,
            )
    except JobError as exc:
        if exc.code in ("wordpress_failed", "deploy_source_failed", "deploy_layout_unknown", "archive_invalid",
                        "deploy_source_invalid", "bad_parameters"):
            # Nothing was switched: the live release is untouched.
            code = "deploy_check_failed" if exc.code == "wordpress_failed" else exc.code
            raise JobError(code, exc.message, resource_intact=True) from None
        raise
    release = releases.record_release(environment, result["release"], source_type, ctx.payload["source_ref"])
    releases.make_current(environment, release)
    releases.forget_pruned(environment, result.get("pruned") or [])
    ctx.result = {"release": release.directory, "commit": result.get("commit"), "layout": result.get("layout")}
    if source_type == ReleaseSourceType.UPLOAD:
        ctx.result.update(archive_id=ctx.payload["archive_id"], archive_sha256=result.get("sha256"))
    with ctx.step("health check of the new release"):
        report = node_ops.check_health(environment, ctx, fatal_errors_since=result.get("switched_at"))
    releases.record_health(release, report.healthy)
    if report.healthy:
        ctx.log(f"release {release.directory} is live and healthy")
        return
    ctx.log(f"release {release.directory} is unhealthy: {report.problem}", LogLevel.ERROR)
    target = releases.last_healthy_release(environment, exclude=release, prefer=previous)
    if target is None:
        raise JobError("health_check_failed", f"The new release is unhealthy ({report.problem}) and no healthy "
                       "release is left to roll back to.")
    _roll_back(ctx, environment, target)
    raise JobError(
        "health_check_failed",
        f"The new release was unhealthy ({report.problem}); rolled back to {target.directory}.",
        resource_intact=True,
    )


def _roll_back(ctx, environment, target):
    with ctx.step(f"roll back to release {target.directory}"):
        try:
            node_ops.rollback(environment, target.directory, ctx=ctx)
        except JobError as exc:
            raise JobError("rollback_failed", f"Rolling back to {target.directory} failed: {exc.message}") from None
    releases.make_current(environment, target)
    with ctx.step("health check after the rollback"):
        report = node_ops.check_health(environment, ctx)
    releases.record_health(target, report.healthy)
    if not report.healthy:
        raise JobError("rollback_failed", f"Rolled back to {target.directory}, but it is unhealthy too: {report.problem}.")


@job_handler("release_rollback", running_status=LifecycleStatus.DEPLOYING)
def release_rollback(ctx):
    """An operator's rollback to an earlier healthy release."""
    environment = Environment.objects.select_related("node").get(pk=ctx.job.environment_id)
    target = environment.releases.get(pk=ctx.payload["release_id"])
    _roll_back(ctx, environment, target)
    ctx.result = {"release": target.directory}


@job_handler("env_cache_toggle")
def env_cache_toggle(ctx):
    """The page cache and the object cache as the job asks: the server block
    regenerated (nginx -t, atomic), the drop-in installed or removed, the
    caches purged; then the environment's flags record it."""
    environment = Environment.objects.select_related("node").get(pk=ctx.job.environment_id)
    wanted = {name: bool(ctx.payload[name]) for name in services.CACHE_FLAGS if name in ctx.payload}
    for name, value in wanted.items():
        setattr(environment, name, value)
    shown = ", ".join(f"{'page' if name.startswith('fastcgi') else 'object'} cache {'on' if value else 'off'}"
                      for name, value in wanted.items())
    with ctx.step(f"{shown} on {environment.node.name}"):
        result = node_ops.toggle_cache(environment, ctx)
    ctx.checkpoint()
    saved = Environment.objects.get(pk=environment.pk)
    change_state(saved, **wanted)
    ctx.result = {"fastcgi_cache_enabled": saved.fastcgi_cache_enabled,
                  "redis_cache_enabled": saved.redis_cache_enabled,
                  "pages_removed": result.get("pages_removed")}


@job_handler("cache_purge")
def cache_purge(ctx):
    """The environment's page cache entries and Redis keys are removed."""
    environment = Environment.objects.select_related("node").get(pk=ctx.job.environment_id)
    with ctx.step(f"purge the caches of {environment.slug}"):
        result = node_ops.purge_caches(environment, ctx)
    ctx.result = {"pages_removed": result.get("pages_removed"), "redis_keys_removed": result.get("redis_keys_removed")}


@job_handler("env_run_scheduled")
def env_run_scheduled(ctx):
    """An operator's choice: a staging or clone environment's held scheduled
    work (due WP-Cron events, the Action Scheduler's queue) run once. Its
    payment and outgoing-request holds stay on while it runs."""
    environment = Environment.objects.select_related("node").get(pk=ctx.job.environment_id)
    with ctx.step(f"run the held scheduled work of {environment.slug} once"):
        ctx.result = node_ops.run_scheduled(environment, ctx=ctx)
    ctx.log(f"ran {ctx.result.get('cron_events')} WP-Cron event(s); due actions left: "
            f"{(ctx.result.get('due_after') or {}).get('scheduled_actions')}")


@job_handler("env_update", running_status=LifecycleStatus.DEPLOYING, timeout_seconds=2 * 60 * 60)
def env_update(ctx):
    """Core, plugin and theme updates (``scope``) by WordPress's own upgrader
    in a new release, after a fresh database backup; switched like a deploy;
    health check and the pages compared before and after; an unhealthy update
    is rolled back (code, and the database when the update changed it)."""
    from apps.backups import pre_change
    from apps.backups.choices import BackupReason

    environment = Environment.objects.select_related("node", "site", "current_release").get(pk=ctx.job.environment_id)
    previous = environment.current_release
    scope = ctx.payload["scope"]
    with ctx.step(f"look for {scope} updates"):
        offer = node_ops.check_updates(environment, ctx=ctx)
        pending = updates.available_updates(offer, scope)
        for component in pending:
            ctx.log(updates.describe(component))
    if not pending:
        ctx.log(f"nothing to update ({scope}): everything is at the offered version")
        ctx.result = {"updated": [], "release": previous.directory if previous else None}
        return
    with ctx.step("pre-update backup of the database"):
        backup = pre_change.take_backup(ctx, environment, "db", "pre-update", BackupReason.PRE_UPDATE)
    ctx.result = {"backup_id": str(backup.pk)}
    pages = updates.pages_to_compare(offer.get("latest_post_url"))
    with ctx.step("fetch the pages to compare (" + ", ".join(label for label, _ in pages) + ")"):
        before = _fetch_pages(environment, pages)
        for page in before:
            ctx.log(f"{page.label} {page.path}: {page.status}, title {page.title!r}, {len(page.text)} characters of text")
    with ctx.step("note the database's tables and version options (to tell later what the update changed)"):
        database_before = node_ops.database_fingerprint(environment, ctx=ctx)
    try:
        result = node_ops.apply_updates(environment, scope=scope, release=ctx.payload["release"], ctx=ctx)
    except JobError as exc:
        if exc.code in ("wordpress_failed", "update_failed", "update_package_failed", "update_package_invalid",
                        "bad_parameters"):
            # Nothing was switched: the live release is untouched. The new code
            # ran once (WordPress loaded from it to check it) and may have
            # migrated the database under the old code: then it goes back.
            message = exc.message
            if _update_changed_database(environment, database_before, ctx):
                _restore_pre_update_database(environment, backup, ctx, "the update failed before the switch")
                message += " The database, which the new code had changed, was restored from the pre-update backup."
            raise JobError(exc.code, message, retryable=exc.retryable, resource_intact=True) from None
        raise
    updated = result.get("updated") or pending
    if not result.get("release"):
        ctx.log("nothing was updated: the update check offered nothing any more")
        ctx.result.update(updated=[])
        return
    summary = ", ".join(updates.describe(component) for component in updated)
    release = releases.record_release(environment, result["release"], ReleaseSourceType.UPDATE,
                                      f"update: {summary}"[:500])
    releases.make_current(environment, release)
    releases.forget_pruned(environment, result.get("pruned") or [])
    database = result.get("database") or {}
    ctx.result.update(release=release.directory, updated=updated, database=database or None)
    for component in updated:
        ctx.log(f"updated {updates.describe(component)}")

    with ctx.step("health check and page comparison"):
        report = node_ops.check_health(environment, ctx, fatal_errors_since=result.get("switched_at"))
        after = _fetch_pages(environment, pages)
        problems = [updates.blame(f"health check: {report.problem}", updated)] if not report.healthy else []
        for old, new in zip(before, after):
            found, notes = updates.compare(old, new)
            problems += [updates.blame(problem, updated) for problem in found]
            for note in notes:
                ctx.log(note)
    ctx.result["pages"] = {"before": [page.as_dict() for page in before], "after": [page.as_dict() for page in after]}
    releases.record_health(release, not problems)
    if not problems:
        ctx.log(f"release {release.directory} is live and healthy; the pages look as before")
        return
    for problem in problems:
        ctx.log(problem, LogLevel.ERROR)
    target = releases.last_healthy_release(environment, exclude=release, prefer=previous)
    if target is None:
        raise JobError("update_rolled_back", "The update made the site unhealthy and no healthy release is left "
                                             f"to roll back to: {problems[0]}")
    with ctx.step(f"roll back to release {target.directory}"):
        try:
            node_ops.rollback(environment, target.directory, ctx=ctx)
        except JobError as exc:
            raise JobError("rollback_failed", f"Rolling back to {target.directory} failed: {exc.message}") from None
    releases.make_current(environment, target)
    restored = ""
    if database.get("changed") or _update_changed_database(environment, database_before, ctx):
        _restore_pre_update_database(environment, backup, ctx, f"the code is back at {target.directory}")
        restored = " and the pre-update database"
    with ctx.step("health check after the rollback"):
        check = node_ops.check_health(environment, ctx)
    releases.record_health(target, check.healthy)
    if not check.healthy:
        raise JobError("rollback_failed", f"Rolled back to {target.directory}, but it is unhealthy too: {check.problem}.")
    raise JobError(
        "update_rolled_back",
        f"The update made the site unhealthy ({problems[0]}); rolled back to {target.directory}{restored}.",
        resource_intact=True,
    )


def _restore_pre_update_database(environment, backup, ctx, where: str) -> None:
    from apps.backups import pre_change

    with ctx.step(f"restore the pre-update database (backup {backup.pk})"):
        part = backup.parts["db"]
        try:
            node_ops.restore_update_database(environment, repository=pre_change.repository_of(environment),
                                             snapshot_id=part["snapshot_id"], sha256=part["sha256"], ctx=ctx)
        except JobError as exc:
            raise JobError("rollback_failed", f"{where[0].upper()}{where[1:]}, but the pre-update database could "
                                              f"not be restored: {exc.message}") from None


def _update_changed_database(environment, before: dict | None, ctx) -> bool:
    """Whether the rolled-back update's own code (a plugin's upgrade routine on
    the first request, say) changed the database's tables or version options
    since the switch: then the old code needs the old database too."""
    if before is None:
        return False
    with ctx.step("compare the database with the one before the update"):
        try:
            after = node_ops.database_fingerprint(environment, ctx=ctx)
        except JobError as exc:
            ctx.log(f"could not read the database to compare it ({exc.message}); it is left as it is",
                    LogLevel.WARNING)
            return False
        changes = updates.database_changes(before, after)
        for change in changes:
            ctx.log(f"the update changed the database: {change}")
        if not changes:
            ctx.log("the update left the database's tables and version options alone; it is kept as it is")
    return bool(changes)


def _fetch_pages(environment, pages) -> list:
    fetched = []
    for label, path in pages:
        try:
            status, body = node_ops.http_get(environment, path)
            fetched.append(updates.read_page(label, path, status, body))
        except (OSError, http.client.HTTPException) as exc:
            fetched.append(updates.read_page(label, path, None, b"", error=f"no answer ({type(exc).__name__})"))
    return fetched


@job_handler("env_promote", running_status=LifecycleStatus.DEPLOYING, timeout_seconds=4 * 60 * 60,
             marks_source="source_environment_id")
def env_promote(ctx):
    """A staging or clone environment's code and non-protected tables into its
    site's production (docs/promotion.md): drift checked again first, a fresh
    full backup of production, then promotion.promote (prepare beside the live
    site, one switch, health check, finish or swap back). Production's
    protected tables and uploads are never written."""
    from apps.backups import pre_change
    from apps.backups.choices import BackupReason, BackupScope
    from apps.environments import promotion

    production = Environment.objects.select_related("node", "site", "current_release").get(pk=ctx.job.environment_id)
    source = Environment.objects.select_related("node", "site", "current_release").get(
        pk=ctx.payload["source_environment_id"])
    ctx.result = {"source_environment_id": str(source.pk)}
    pruned_earlier = []
    if ctx.job.attempt_count:
        # An earlier run may have stopped between the switch and its verdict: never judge on top of it.
        # (One stopped during its finish was judged healthy already: the node finishes it instead.)
        with ctx.step("undo what an earlier run of this promotion left unfinished"):
            try:
                undone = promotion.revert(source, production, ctx)
            except JobError as exc:
                raise JobError("rollback_failed", f"An earlier run of this promotion left production unfinished and "
                                                  f"swapping it back failed: {exc.message}") from None
            pruned_earlier = undone.get("pruned") or []
    measured = _measure_for_promotion(ctx, source, production)
    if ctx.job.attempt_count and measured.get("release") == ctx.payload["release"]:
        # The worker of an earlier run died after the verdict: the promotion is live, judged healthy and finished.
        ctx.log(f"an earlier run of this job finished the promotion (production runs release "
                f"{ctx.payload['release']}); recording it")
        release = _record_promoted_release(ctx, production, source, ctx.payload["release"], pruned_earlier)
        ctx.result.update(release=release.directory)
        return
    _promotion_drift_gate(ctx, source, production, measured)
    with ctx.step(f"pre-promotion full backup of {production.slug}"):
        backup = pre_change.take_backup(ctx, production, BackupScope.FULL, "pre-promotion", BackupReason.PRE_PROMOTE)
    ctx.result["backup_id"] = str(backup.pk)
    origin = source.current_release
    ctx.log(f"promote {source.slug} (release {origin.directory if origin else '?'}, {source.promotion_preset}) into "
            f"{production.slug}: prepare beside the live site, switch, health check", LogLevel.STEP)
    try:
        result = promotion.promote(source, production, release=ctx.payload["release"], ctx=ctx)
    except (JobCancelled, JobTimedOut):
        ctx.log("stopped before the promotion was judged healthy: swapping production back", LogLevel.WARNING)
        try:
            promotion.revert(source, production, ctx)
        except JobError as exc:
            _restore_after_failed_swap_back(ctx, exc, source, production, backup)
        ctx.log("production's previous tables and release are live again")
        raise
    except JobError as exc:
        stage = getattr(exc, "promotion_stage", None)
        if stage in ("revert_failed", "undo_failed"):
            _restore_after_failed_swap_back(ctx, exc, source, production, backup)
        if stage == "finish":
            _record_promoted_release(ctx, production, source, ctx.payload["release"], [])
            raise JobError(exc.code, f"The promotion is live and healthy, but cleaning up after it failed: "
                                     f"{exc.message}", retryable=False, resource_intact=True) from None
        if stage in ("undone", "reverted"):
            ctx.log(f"production is as it was before the promotion ({exc.code})", LogLevel.ERROR)
            raise JobError(exc.code, exc.message, retryable=exc.retryable, resource_intact=True) from None
        raise
    release = _record_promoted_release(ctx, production, source, result["release"], result.get("pruned") or [])
    rewrite = result.get("url_rewrite") or {}
    tables = result.get("tables") or {}
    ctx.result.update(release=release.directory, previous_release=result.get("previous_release"),
                      tables_overwritten=tables.get("overwrite"), tables_created=tables.get("create"),
                      tables_protected=tables.get("protected"), tables_kept_target_only=tables.get("target_only"),
                      url_rewrite={"rows_changed": rewrite.get("rows_changed"), "remaining": rewrite.get("remaining")},
                      pruned=result.get("pruned") or [])
    ctx.log("the page cache and the object cache of production were purged at the switch and after the finish")
    ctx.log(f"{source.slug} is live in {production.slug} as release {release.directory}; healthy; "
            f"pre-promotion backup {backup.pk}")


def _measure_for_promotion(ctx, source, production) -> dict:
    """Production's checksums now, for the job's own drift check."""
    if drift.current_baseline(source) is None:
        raise JobError("drift_no_baseline", f"{source.slug} has no baseline of production to check drift against; "
                                            "nothing was changed.", resource_intact=True)
    with ctx.step(f"drift check: {production.slug} now against {source.slug}'s baseline ({source.promotion_preset})"):
        try:
            return node_ops.checksums(production, ctx)
        except JobError as exc:
            raise JobError(exc.code, exc.message, retryable=exc.retryable, resource_intact=True) from None


def _promotion_drift_gate(ctx, source, production, measured) -> None:
    """The job's own drift check (the world may have moved since the request):
    recorded like a drift_check job's; drifted refuses with nothing changed."""
    baseline = drift.current_baseline(source)
    check = drift.record_check(source, production, baseline, measured, job=ctx.job)
    ctx.result["drift_check_id"] = str(check.pk)
    ctx.log(drift.summary(check.report))
    blocker = drift.promotion_blocker(Environment.objects.get(pk=source.pk))
    if blocker is not None:
        raise JobError("promotion_drifted", f"Not promoted, nothing was changed: {blocker} "
                                            f"({drift.summary(check.report)}). Refresh {source.slug} from production, "
                                            "check drift again, then promote.", resource_intact=True)
    ctx.checkpoint()


def _restore_after_failed_swap_back(ctx, exc, source, production, backup):
    """The swap back itself failed: production is restored from the
    pre-promotion backup in this run (as env_restore restores: verified,
    pre-restore backup, new release, database swapped in, health check, put
    back when unhealthy), run to its end whatever stops the job meanwhile (a
    lost claim excepted), then the promotion is forgotten on the node. The job
    fails either way: ``promotion_restored_from_backup`` (production active) or
    ``rollback_failed`` (production failed, the message names the backup)."""
    from apps.backups import jobs as backup_jobs
    from apps.backups import services as backup_services
    from apps.backups import storage
    from apps.environments import promotion

    swap_back = f"Swapping production back after the promotion failed ({exc.code}: {exc.message})"
    ctx.log(f"{swap_back}; restoring {production.slug} from the pre-promotion backup {backup.pk}", LogLevel.ERROR)
    shielded = promotion.shielded(ctx)
    production = Environment.objects.select_related("node", "site", "current_release").get(pk=production.pk)
    backup.refresh_from_db()
    config = storage.configured_storage()
    try:
        problem = backup_services.restorable_problem(backup, production)
        if config is None:
            raise JobError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT)
        if problem is not None:
            raise JobError("backup_not_restorable", problem.message)
        restored = backup_jobs.restore_backup(shielded, production, backup, config, release=naming.new_release_name())
    except JobError as failure:
        raise JobError("rollback_failed", f"{swap_back}, and so did restoring it from the pre-promotion backup "
                                          f"{backup.pk} ({failure.code}: {failure.message}). Reset {production.slug}, "
                                          f"then restore it from the pre-promotion backup {backup.pk} (POST "
                                          f"/api/environments/{production.pk}/restore or the admin's Restore a "
                                          "backup).") from None
    ctx.result.update(restored_from_backup_id=str(backup.pk), restore=restored)
    kept = ""
    try:
        abandoned = node_ops.promotion_phase(source, production, "abandon", ctx=shielded, timeout=600)
        if abandoned.get("kept"):
            kept = (f" The tables the promotion moved are kept on the node for an operator "
                    f"({', '.join(abandoned['kept'])}).")
    except JobError as failure:
        ctx.log(f"forgetting the failed promotion on the node failed ({failure.code}: {failure.message})",
                LogLevel.WARNING)
        kept = " What the promotion left on the node (its state file, scratch databases) is left for an operator."
    pre_restore = restored.get("pre_restore_backup_id")
    raise JobError("promotion_restored_from_backup",
                   f"{swap_back}. Production was restored from the pre-promotion backup {backup.pk} and is healthy; "
                   f"the pre-restore backup {pre_restore} holds production as the failure left it.{kept}",
                   resource_intact=True) from None


def _record_promoted_release(ctx, production, source, directory, pruned):
    origin = source.current_release
    release = releases.record_release(production, directory, ReleaseSourceType.PROMOTION,
                                      f"promotion of {source.slug}/{origin.directory if origin else '?'}"[:500])
    releases.make_current(production, release)
    releases.record_health(release, True)
    releases.forget_pruned(production, pruned)
    # The source's last check described production before this promotion: a new check is due.
    saved = Environment.objects.get(pk=source.pk)
    change_state(saved, drift_status=DriftStatus.UNKNOWN)
    return release
