"""Environment state transitions."""

import hashlib
import os
import re
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.backups import services as backups
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.passwords import new_database_password
from apps.core.state import change_state, reset_failed
from apps.environments import naming, node_ops
from apps.environments.choices import EnvironmentType
from apps.environments.models import DeployArchive, Environment
from apps.environments.remote import release_archive
from apps.environments.repository_urls import refuse_credentials
from apps.environments.staging_holds import clean_hosts, non_production_environment
from apps.jobs.services import enqueue_job
from apps.jobs.choices import ACTIVE as ACTIVE_JOB_STATUSES
from apps.jobs.models import Job
from apps.nodes.choices import NodeStatus
from apps.nodes.keys import new_key_pair
from apps.nodes.operator_calls import run_now
from apps.sites.models import Site


def reset_environment(environment_id, expected_version: int | None = None) -> Environment:
    """``failed -> active``, only when nothing still works on it and its node is in service.

    Validation: no queued or running job on the environment, and its node is
    not decommissioned.
    """
    with transaction.atomic():
        environment = (
            Environment.objects.select_for_update().select_related("node").filter(pk=environment_id).first()
        )
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        problems = []
        active_jobs = list(
            Job.objects.filter(environment=environment, status__in=ACTIVE_JOB_STATUSES).values_list("pk", flat=True)
        )
        if active_jobs:
            problems.append(f"{len(active_jobs)} job(s) still queued or running on the environment")
        if environment.node.status == NodeStatus.DECOMMISSIONED:
            problems.append(f"its node {environment.node.name} is decommissioned")
        return reset_failed(environment, expected_version, problems=problems, active_job_ids=active_jobs)


MAGIC_LOGIN_LIFETIME = 60
MAGIC_LOGIN_DEADLINE = 10.0


def magic_login(environment_id) -> dict:
    """A one-time wp-admin login URL, valid 60 s: one node command, no job.

    Errors: 409 environment_not_active, 502 node_unreachable (SSH), 502
    wp_cli_error (the WordPress helper failed).
    """
    environment = Environment.objects.select_related("node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError(
            "environment_not_active", f"The environment is {environment.status}, not active.", {"status": environment.status}
        )
    started = time.monotonic()
    answer = run_now(environment.node, "wp_login.py", node_ops.login_params(environment, MAGIC_LOGIN_LIFETIME),
                     timeout=MAGIC_LOGIN_DEADLINE, wordpress_action="create a login link")
    if time.monotonic() - started > MAGIC_LOGIN_DEADLINE:
        raise ApiError("node_unreachable", "The node took longer than 10 s to answer.")
    expires_at = datetime.fromtimestamp(int(answer["expires"]), tz=dt_timezone.utc)
    base = naming.canonical_url(environment).rstrip("/") + "/"
    return {"login_url": f"{base}?pressluft_login={answer['token']}", "expires_at": expires_at}


def request_health_check(environment_id, user=None):
    environment = Environment.objects.select_related("node", "site").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    return enqueue_job("health_check", environment=environment, user=user)


def create_environment(*, site_id, name: str, slug: str, environment_type: str, source_environment_id=None,
                       promotion_preset: str = "content-protect", expires_at=None, user=None):
    """A staging or clone environment as a full copy of a source environment
    (default: the site's production), on the source's node; queues ``env_create``.

    The new environment starts ``cloning`` (the job's running status) and ends
    ``active`` or ``failed``. The source shows ``cloning`` while it is copied
    and is ``active`` again afterwards (the job only reads it); the job holds
    the site's lock, so no other job of the site changes it meanwhile.
    Returns the job.
    """
    if environment_type == EnvironmentType.PRODUCTION:
        raise ApiError("conflict", "A site has exactly one production environment; create a staging or clone one.",
                       {"type": environment_type})
    if environment_type not in (EnvironmentType.STAGING, EnvironmentType.CLONE):
        raise ApiError("bad_request", f"Unknown environment type {environment_type}.", {"fields": {"type": ["unknown type"]}})
    try:
        with transaction.atomic():
            site = Site.objects.select_for_update(no_key=True).filter(pk=site_id).first()
            if site is None:
                raise ApiError("not_found", "No site with this id.")
            if site.status == LifecycleStatus.FAILED:
                raise ApiError("conflict", "The site is failed; reset it first.", {"status": site.status})
            if source_environment_id is None:
                source = site.environments.filter(environment_type=EnvironmentType.PRODUCTION).first()
                if source is None:
                    raise ApiError("conflict", "The site has no production environment to copy.")
            else:
                source = site.environments.filter(pk=source_environment_id).first()
                if source is None:
                    raise ApiError("bad_request", "The site has no environment with this id.",
                                   {"fields": {"source_environment_id": ["not an environment of this site"]}})
            if source.status != LifecycleStatus.ACTIVE:
                raise ApiError("environment_not_active", f"The source environment {source.slug} is {source.status}, not active.",
                               {"status": source.status, "environment_id": str(source.pk)})
            node = source.node
            if node.status != NodeStatus.ACTIVE:
                raise ApiError("conflict", f"Node {node.name} is {node.status}, not active.")
            if site.environments.filter(slug=slug).exists():
                raise ApiError("conflict", f"The site has an environment with slug {slug} already.", {"slug": slug})
            environment = Environment(
                id=uuid.uuid4(),
                site=site,
                node=node,
                name=name,
                slug=slug,
                environment_type=environment_type,
                status=LifecycleStatus.CLONING,
                source_environment=source,
                promotion_preset=promotion_preset,
                expires_at=expires_at,
                db_password=new_database_password(),
            )
            environment.preview_url = naming.preview_url(environment, node)
            environment.save()
            return enqueue_job(
                "env_create",
                site=site,
                environment=environment,
                node=node,
                # Fixed here so every run of the job (a retry too) builds the same release directory.
                payload={"source_environment_id": str(source.pk), "release": naming.new_release_name()},
                user=user,
            )
    except IntegrityError:
        raise ApiError("conflict", f"The site has an environment with slug {slug} already.", {"slug": slug}) from None


def create_throwaway_environment(source: Environment, slug: str, lifetime_hours: int = 24) -> Environment:
    """A clone's record for work that builds and removes it in one job (the
    backup restore drill): not queued anywhere, expiring in a day so the
    expiry sweep removes it should that job die before it does."""
    environment = Environment(
        id=uuid.uuid4(), site=source.site, node=source.node, name=f"Throwaway {slug}", slug=slug,
        environment_type=EnvironmentType.CLONE, status=LifecycleStatus.ACTIVE, source_environment=source,
        promotion_preset=source.promotion_preset, db_password=new_database_password(),
        expires_at=timezone.now() + timedelta(hours=lifetime_hours),
    )
    environment.preview_url = naming.preview_url(environment, source.node)
    environment.save()
    return environment


def delete_environment(environment_id, user=None, final_backup: bool = True):
    """Queue ``env_delete`` for a staging or clone environment: a final
    backup first (unless ``final_backup`` is False; see
    backups.services.final_backup_payload), then everything it has on its node
    goes, then its records. Production goes only with its site."""
    with transaction.atomic():
        environment = Environment.objects.select_for_update().filter(pk=environment_id).first()
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        if environment.environment_type == EnvironmentType.PRODUCTION:
            raise ApiError("conflict", "The production environment is deleted with its site (DELETE /api/sites/{id}).")
        if Job.objects.filter(environment=environment, status__in=ACTIVE_JOB_STATUSES).exists():
            raise ApiError("conflict", "A job is queued or running on this environment; wait for it or cancel it.")
        return enqueue_job(
            "env_delete",
            environment=environment,
            payload={"environment_id": str(environment.pk), "slug": environment.slug,
                     **backups.final_backup_payload([environment], final_backup)},
            user=user,
        )


def remove_environment_records(environment_ids) -> None:
    """After the node work of env_delete or site_delete: the environments'
    rows and what hangs on them (uploaded archives, references). Their
    backups stay, kept for their retention (backups outlive environments)."""
    environment_ids = list(environment_ids)
    for archive in DeployArchive.objects.filter(environment_id__in=environment_ids):
        delete_deploy_archive_file(archive)
    with transaction.atomic():
        Environment.objects.filter(source_environment_id__in=environment_ids).update(source_environment=None)
        backups.forget_environment_backups(environment_ids)
        environments = Environment.objects.filter(pk__in=environment_ids)
        environments.update(primary_domain=None, current_release=None, last_drift_check=None)
        environments.delete()


def expired_environments():
    """Staging and clone environments past their ``expires_at``, not being deleted already."""
    return (
        Environment.objects.exclude(environment_type=EnvironmentType.PRODUCTION)
        .filter(expires_at__isnull=False, expires_at__lte=timezone.now(), status=LifecycleStatus.ACTIVE)
        .exclude(jobs__job_type="env_delete", jobs__status__in=ACTIVE_JOB_STATUSES)
        .select_related("site", "node")
    )


GIT_REPOSITORY = re.compile(r"^(https://[^\s#]+|ssh://[^\s#]+|git@[A-Za-z0-9.-]+:[^\s#]+)$")
# A repository on the node itself: only where GIT_ALLOW_LOCAL_REPOSITORIES says
# so (the test suite); anywhere else it would let a deploy read the node's files.
LOCAL_GIT_REPOSITORY = re.compile(r"^(file:///[^\s#]+|/[^\s#]+)$")
GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")
LOCAL_REPOSITORY_REFUSED = "local repositories (file:// or a path on the node) are not accepted"


def usable_repository(url: str) -> bool:
    if LOCAL_GIT_REPOSITORY.match(url):
        return settings.GIT_ALLOW_LOCAL_REPOSITORIES
    return bool(GIT_REPOSITORY.match(url))


def set_git_repository(environment_id, repository_url: str, *, new_deploy_key: bool = False, user=None) -> Environment:
    """The repository git deploys of the environment fetch from; the first
    time one is set (or when asked, e.g. after a leak), the environment gets
    a new deploy key pair of its own."""
    repository_url = repository_url.strip()
    refuse_credentials(repository_url, "repository_url")
    if repository_url and not usable_repository(repository_url):
        problem = ("expected an https://, ssh:// or git@host:path URL"
                   + (f"; {LOCAL_REPOSITORY_REFUSED}" if LOCAL_GIT_REPOSITORY.match(repository_url) else ""))
        raise ApiError("bad_request", "Not a usable git repository URL.", {"fields": {"repository_url": [problem]}})
    with transaction.atomic():
        environment = Environment.objects.select_for_update().select_related("site").filter(pk=environment_id).first()
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        changes = {"git_repository": repository_url}
        if repository_url and (new_deploy_key or not environment.deploy_key_private):
            changes["deploy_key_private"], changes["deploy_key_public"] = new_key_pair(
                f"pressluft-deploy-{environment.site.slug}-{environment.slug}"
            )
        return change_state(environment, **changes)


def store_deploy_archive(environment_id, upload, *, filename: str, user=None):
    """Keep an uploaded archive for a later ``source_type: upload`` deploy,
    once remote/release_archive.py found nothing wrong in it. A refused
    archive is not kept. ``upload`` is a file object (read from the start)."""
    environment = Environment.objects.filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    settings.DEPLOY_ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, temporary = tempfile.mkstemp(prefix=".upload-", dir=settings.DEPLOY_ARCHIVE_DIR)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.read(1024 * 1024):
                size += len(chunk)
                if size > settings.DEPLOY_ARCHIVE_MAX_BYTES:
                    raise ApiError("upload_too_large",
                                   f"The archive is larger than {settings.DEPLOY_ARCHIVE_MAX_BYTES} bytes.",
                                   {"max_bytes": settings.DEPLOY_ARCHIVE_MAX_BYTES})
                digest.update(chunk)
                out.write(chunk)
        try:
            inspection = release_archive.inspect(temporary, max_bytes=settings.DEPLOY_ARCHIVE_MAX_UNPACKED_BYTES)
        except release_archive.ArchiveRejected as exc:
            raise ApiError("archive_invalid", f"The archive was refused: {exc}", {"problems": exc.problems}) from None
        archive = DeployArchive(
            environment=environment, filename=filename[:255] or "archive", archive_format=inspection.format,
            layout=inspection.layout, size_bytes=size, unpacked_bytes=inspection.total_bytes,
            sha256=digest.hexdigest(), created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        os.chmod(temporary, 0o600)
        os.replace(temporary, archive.stored_path)
        archive.save()
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    _prune_deploy_archives(environment)
    return archive


def _prune_deploy_archives(environment) -> None:
    kept = settings.DEPLOY_ARCHIVES_KEPT
    for old in list(environment.deploy_archives.all()[kept:]):
        delete_deploy_archive_file(old)
        old.delete()


def delete_deploy_archive_file(archive) -> None:
    archive.stored_path.unlink(missing_ok=True)


def deploy(environment_id, *, source_type: str, source_ref: str, user=None):
    """Queue ``env_deploy``.

    git: ``source_ref`` is a branch, tag or commit of the environment's
    repository, or ``<repository>#<ref>`` for another repository.
    upload: ``source_ref`` is the id of an archive uploaded to the environment.
    """
    environment = Environment.objects.select_related("site", "node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if source_type == "upload":
        source = _archive_source(environment, source_ref)
    else:
        source = _git_source(environment, source_ref)
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.")
    if environment.current_release_id is None:
        raise ApiError("conflict", "The environment has no release yet to build on.")
    return enqueue_job(
        "env_deploy",
        environment=environment,
        payload=dict(source, source_type=source_type, source_ref=source_ref,
                     release=naming.new_release_name()),
        user=user,
    )


def _git_source(environment, source_ref: str) -> dict:
    repository, _, ref = source_ref.rpartition("#")
    # Also the environment's own setting: one stored before credentials were refused.
    refuse_credentials(repository or environment.git_repository, "source_ref")
    if not repository:
        repository = environment.git_repository
        if not repository:
            raise ApiError("bad_request", "The environment has no git repository set; set one, or give "
                           "source_ref as <repository>#<ref>.", {"fields": {"source_ref": ["no repository"]}})
    if not usable_repository(repository) or not GIT_REF.match(ref):
        problem = ("expected e.g. main, v1.2 or https://git.example.com/site.git#main"
                   + (f"; {LOCAL_REPOSITORY_REFUSED}" if LOCAL_GIT_REPOSITORY.match(repository) else ""))
        raise ApiError("bad_request", "source_ref must be a branch, tag or commit, or <repository>#<ref>.",
                       {"fields": {"source_ref": [problem]}})
    return {"repository": repository, "ref": ref}


def _archive_source(environment, source_ref: str) -> dict:

    try:
        archive_id = uuid.UUID(source_ref)
    except ValueError:
        archive_id = None
    archive = DeployArchive.objects.filter(pk=archive_id, environment=environment).first() if archive_id else None
    if archive is None or not archive.stored_path.exists():
        raise ApiError("bad_request", "source_ref must be the id of an archive uploaded to this environment.",
                       {"fields": {"source_ref": ["unknown archive"]}})
    return {"archive_id": str(archive.pk)}


def rollback(environment_id, release_id, user=None):
    """Queue ``release_rollback`` to an earlier healthy release of the environment."""
    from apps.environments.choices import ReleaseHealth
    from apps.environments.models import Release

    environment = Environment.objects.select_related("site", "node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    release = Release.objects.filter(pk=release_id, environment=environment).first()
    if release is None:
        raise ApiError("bad_request", "No such release of this environment.", {"fields": {"release_id": ["unknown"]}})
    if release.health != ReleaseHealth.HEALTHY:
        raise ApiError("conflict", "Only a healthy release can be rolled back to.")
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.")
    return enqueue_job("release_rollback", environment=environment, payload={"release_id": str(release.pk)}, user=user)


CACHE_FLAGS = ("fastcgi_cache_enabled", "redis_cache_enabled")


def _active_environment(environment_id) -> Environment:
    environment = Environment.objects.select_related("site", "node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                       {"status": environment.status})
    return environment


def set_cache(environment_id, *, user=None, **flags):
    """Queue ``env_cache_toggle``: the FastCGI page cache and/or the Redis
    object cache on or off. The flags given travel in the job; the
    environment's own flags change when the node has done it, so they always
    say what the node serves. Returns the job."""
    flags = {name: bool(value) for name, value in flags.items() if value is not None}
    unknown = set(flags) - set(CACHE_FLAGS)
    if not flags or unknown:
        raise ApiError("bad_request", "Give fastcgi_cache_enabled, redis_cache_enabled or both.",
                       {"fields": {name: ["unknown field"] for name in unknown}})
    environment = _active_environment(environment_id)
    return enqueue_job("env_cache_toggle", environment=environment, payload=flags, user=user)


def purge_cache(environment_id, user=None):
    """Queue ``cache_purge``: the environment's page cache entries and its
    Redis keys go (other environments' stay). Returns the job."""
    environment = _active_environment(environment_id)
    return enqueue_job("cache_purge", environment=environment, user=user)


def request_drift_check(environment_id, user=None):
    """Queue ``drift_check`` for a staging or clone environment: its site's
    production measured now and compared with the baseline taken when the
    environment was copied (apps/environments/drift.py). Returns the job.

    Errors: 404 not_found; 409 environment_not_active (it, or production, is
    not active); 409 drift_no_baseline (production itself, or a copy made
    without one: from a backup, or before drift checks)."""
    from apps.environments import drift

    environment = _active_environment(environment_id)
    if environment.environment_type == EnvironmentType.PRODUCTION:
        raise ApiError("drift_no_baseline", "Drift is checked on a staging or clone environment: production now is "
                       "compared with the baseline taken when that environment was copied from it.",
                       {"environment_type": environment.environment_type})
    production = drift.production_of(environment)
    if production is None or production.status != LifecycleStatus.ACTIVE:
        status = production.status if production else None
        raise ApiError("environment_not_active", f"The site's production environment is {status}, not active.",
                       {"status": status})
    if drift.current_baseline(environment) is None:
        raise ApiError("drift_no_baseline", "This environment has no baseline of production to compare with (it was "
                       "not copied from production, or before drift checks existed); make a new copy of production.")
    return enqueue_job("drift_check", environment=environment,
                       payload={"production_environment_id": str(production.pk)}, user=user)


def refresh_from_production(environment_id, user=None):
    """Queue ``env_refresh`` for a staging or clone environment: production's
    protected tables (by its preset) and uploads are copied into it, URLs
    rewritten; its code, settings and other tables stay, and its drift
    baseline is taken anew (docs/promotion.md). Returns the job.

    Errors: 404 not_found; 409 conflict (production itself); 409
    environment_not_active (it, or production, is not active)."""
    from apps.environments import drift

    environment = _active_environment(environment_id)
    if environment.environment_type == EnvironmentType.PRODUCTION:
        raise ApiError("conflict", "Production is what a staging or clone environment is refreshed from.",
                       {"environment_type": environment.environment_type})
    production = drift.production_of(environment)
    if production is None or production.status != LifecycleStatus.ACTIVE:
        status = production.status if production else None
        raise ApiError("environment_not_active", f"The site's production environment is {status}, not active.",
                       {"status": status})
    return enqueue_job("env_refresh", environment=environment,
                       payload={"production_environment_id": str(production.pk)}, user=user)


def run_scheduled(environment_id, user=None):
    """Queue ``env_run_scheduled``: the held WP-Cron events and Action
    Scheduler queue of a staging or clone environment, run once (its payment
    and outgoing-request holds stay on). Production holds nothing."""
    environment = non_production_environment(environment_id)
    return enqueue_job("env_run_scheduled", environment=environment, user=user)


WRITE_CONFIG_DEADLINE = 20.0


def set_outgoing_allowed_hosts(environment_id, hosts, user=None) -> Environment:
    """The hosts a staging or clone environment's WordPress may reach (a name
    covers its subdomains); every other host, payment processors included, is
    refused. Written to the environment's wp-config.php on its node at once,
    and kept only if that worked."""
    hosts = clean_hosts(hosts)
    with transaction.atomic():
        environment = (Environment.objects.select_for_update().select_related("node", "site")
                       .filter(pk=environment_id).first())
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        if environment.environment_type == EnvironmentType.PRODUCTION:
            raise ApiError("conflict", "Production reaches whatever it needs: it has no allow-list.")
        if environment.status != LifecycleStatus.ACTIVE:
            raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                           {"status": environment.status})
        environment.outgoing_allowed_hosts = hosts
        run_now(environment.node, "env_write_config.py", node_ops.write_config_params(environment),
                timeout=WRITE_CONFIG_DEADLINE, task="configuration update")
        return change_state(environment, outgoing_allowed_hosts=hosts)


def request_update(environment_id, scope: str, user=None):
    """Queue ``env_update`` (core, plugins, themes or all).

    Refused: 400 unknown scope; 409 ``backup_storage_not_configured`` (an
    update always starts with a fresh database backup: without storage there
    is no way back from a database upgrade, so none is started);
    409 ``environment_not_active``; 409 ``conflict`` without a release.
    """
    from apps.backups import services as backups
    from apps.backups import storage
    from apps.environments.updates import SCOPES

    if scope not in SCOPES:
        raise ApiError("bad_request", f"Unknown update scope {scope!r}.",
                       {"fields": {"scope": [f"one of {', '.join(SCOPES)}"]}})
    with transaction.atomic():
        environment = (Environment.objects.select_for_update(no_key=True).select_related("site", "node")
                       .filter(pk=environment_id).first())
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        if storage.configured_storage() is None:
            raise backups.storage_not_configured()
        if environment.status != LifecycleStatus.ACTIVE:
            raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                           {"status": environment.status})
        if environment.current_release_id is None:
            raise ApiError("conflict", "The environment has no release yet to update.")
        return enqueue_job("env_update", environment=environment, user=user,
                           payload={"scope": scope, "release": naming.new_release_name()})


def available_updates(environment_id) -> dict:
    """What WordPress's update check offers the environment now (asked on the
    node, no job): {"core", "plugins", "themes"} with installed and available versions."""
    environment = Environment.objects.select_related("node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                       {"status": environment.status})
    answer = run_now(environment.node, "env_update.py", node_ops.update_params(environment, "check"),
                     timeout=node_ops.UPDATE_CHECK_TIMEOUT, wordpress_action="check for updates")
    for key in ("plugins", "themes"):
        for row in answer.get(key) or []:
            row.pop("package", None)
    if answer.get("core"):
        answer["core"] = {key: answer["core"].get(key) for key in ("installed", "available")}
    return answer


def _promotion_pair(source_id, target_id) -> tuple[Environment, Environment]:
    """The source and target of a promotion (or its plan), or the ApiError that
    refuses it: 404 for an unknown id; 409 when the source is production, the
    target is not its site's production (on the same node), or either is not
    active."""
    source = Environment.objects.select_related("site", "node", "current_release").filter(pk=source_id).first()
    if source is None:
        raise ApiError("not_found", "No environment with this id.")
    target = Environment.objects.select_related("site", "node", "current_release").filter(pk=target_id).first()
    if target is None:
        raise ApiError("not_found", "No target environment with this id.")
    if source.environment_type == EnvironmentType.PRODUCTION:
        raise ApiError("promotion_source_is_production", "Production is what a staging or clone environment is "
                       "promoted into, not a source.", {"environment_type": source.environment_type})
    if target.site_id != source.site_id or target.environment_type != EnvironmentType.PRODUCTION:
        raise ApiError("promotion_target_invalid", "A staging or clone environment is promoted only into its own "
                       "site's production environment.", {"target_environment_type": target.environment_type})
    if target.node_id != source.node_id:
        raise ApiError("promotion_target_invalid", "The environment and its site's production are on different nodes; "
                       "a promotion copies on one node.")
    for environment in (source, target):
        if environment.status != LifecycleStatus.ACTIVE:
            raise ApiError("environment_not_active", f"Environment {environment.slug} is {environment.status}, not "
                           "active.", {"environment_id": str(environment.pk), "status": environment.status})
    if source.current_release_id is None:
        raise ApiError("conflict", f"{source.slug} has no release to promote.")
    return source, target


def request_promote(source_id, target_environment_id, user=None):
    """Queue ``env_promote``: the source's current release and non-protected
    tables into its site's production (docs/promotion.md). Returns the job.

    Refused before anything is queued: 404 not_found (either id); 409
    promotion_source_is_production, promotion_target_invalid,
    environment_not_active (either), promotion_drifted /
    promotion_drift_unknown (the source's drift status; no override),
    backup_storage_not_configured (the job starts with a full backup of
    production), conflict (no release)."""
    from apps.backups import storage
    from apps.environments import drift
    from apps.environments.choices import DriftStatus

    with transaction.atomic():
        source, target = _promotion_pair(source_id, target_environment_id)
        # Locked so that a drift check recorded meanwhile is seen.
        source = Environment.objects.select_for_update(no_key=True).select_related("site", "node").get(pk=source.pk)
        blocker = drift.promotion_blocker(source)
        if blocker is not None:
            code = "promotion_drifted" if source.drift_status == DriftStatus.DRIFTED else "promotion_drift_unknown"
            raise ApiError(code, f"{source.slug} cannot be promoted: {blocker}. No override: refresh it from "
                           "production, check drift again, then promote.",
                           {"drift_status": source.drift_status,
                            "last_drift_check_id": str(source.last_drift_check_id) if source.last_drift_check_id
                            else None})
        if storage.configured_storage() is None:
            raise backups.storage_not_configured()
        return enqueue_job("env_promote", environment=target, user=user,
                           payload={"source_environment_id": str(source.pk), "release": naming.new_release_name()})


# What a protected table holds, in the words the plan uses for what stays out
# of production: (name after the prefix, or its start when it ends with "*").
PROTECTED_CONTENT = (
    ("posts", "posts, pages and other content"),
    ("postmeta", "the fields of posts and pages"),
    ("comments", "comments"),
    ("commentmeta", "the fields of comments"),
    ("terms", "categories and tags"),
    ("term_taxonomy", "categories and tags"),
    ("term_relationships", "what is filed under which category or tag"),
    ("woocommerce_order*", "orders"),
    ("wc_order*", "orders"),
    ("wc_customer_lookup", "customers"),
    ("actionscheduler_*", "scheduled actions (renewals, payments)"),
)


def _protected_content(table: str, prefix: str) -> str:
    name = table[len(prefix):] if table.startswith(prefix) else table
    for pattern, words in PROTECTED_CONTENT:
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return words
    return "protected data"


def promotion_plan(source_id, target_id) -> dict:
    """What promoting ``source`` into ``target`` would do now, asked of the node
    (env_promote.py's read-only ``plan``), with the source's drift state.
    Same refusals as ``request_promote`` except drift (a plan helps decide)."""
    from apps.environments import drift

    source, target = _promotion_pair(source_id, target_id)
    answer = run_now(target.node, "env_promote.py", node_ops.promotion_params(source, target, "plan"),
                     timeout=PROMOTION_PLAN_TIMEOUT, task="promotion plan")
    prefix = answer.get("prefix") or node_ops.TABLE_PREFIX
    rows = answer.get("tables") or []

    def listed(action):
        return [{key: entry.get(key) for key in ("table", "source_rows", "target_rows", "identical")}
                for entry in rows if entry.get("action") == action]

    not_live = [
        {"table": entry["table"], "holds": _protected_content(entry["table"], prefix),
         "source_rows": entry.get("source_rows"), "target_rows": entry.get("target_rows")}
        for entry in rows
        if entry.get("action") == "protected" and entry.get("source_rows") is not None and not entry.get("identical")
    ]
    blocker = drift.promotion_blocker(source)
    return {
        "source_environment_id": str(source.pk),
        "target_environment_id": str(target.pk),
        "preset": answer.get("preset") or source.promotion_preset,
        "drift": {"status": source.drift_status, "checked_at": source.drift_checked_at,
                  "last_drift_check_id": str(source.last_drift_check_id) if source.last_drift_check_id else None,
                  "blocker": blocker},
        "promotable": blocker is None,
        "changed_tables": answer.get("changed_tables") or [],
        "tables_overwritten": listed("overwrite"),
        "tables_created": listed("create"),
        "tables_protected": listed("protected"),
        "tables_kept_target_only": listed("target_only"),
        "kept_options": answer.get("kept_options") or [],
        "code": answer.get("code") or {},
        "not_going_live": not_live,
    }


PROMOTION_PLAN_TIMEOUT = 600
