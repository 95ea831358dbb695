"""Backups: requesting one, final backups of what is deleted, recording what
the node stored, and which backups are past their retention."""

import hashlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.backups import storage
from apps.backups.choices import BackupReason, BackupScope, BackupStatus, StorageType
from apps.backups.models import Backup
from apps.backups.schedules import retention_for
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.environments import naming
from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment
from apps.jobs.choices import JobStatus
from apps.jobs.errors import JOB_ERROR_CODES
from apps.jobs.models import Job
from apps.jobs.services import enqueue_job


def storage_not_configured() -> ApiError:
    return ApiError("backup_storage_not_configured", storage.NOT_CONFIGURED_HINT,
                    {"missing": storage.missing_fields(storage.effective_values())})


def request_backup(environment_id, backup_scope: str, user=None):
    """A pending Backup of the environment and the ``backup_create`` job that makes it.

    Refused: 400 for an unknown scope, 409 ``backup_storage_not_configured``
    without storage, 409 ``environment_not_active``. Returns the job.
    """
    if backup_scope not in BackupScope.values:
        raise ApiError("bad_request", f"Unknown backup scope {backup_scope!r}.",
                       {"fields": {"backup_scope": [f"one of {', '.join(BackupScope.values)}"]}})
    with transaction.atomic():
        environment = (Environment.objects.select_for_update(no_key=True).select_related("site", "node")
                       .filter(pk=environment_id).first())
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        config = storage.configured_storage()
        if config is None:
            raise storage_not_configured()
        if environment.status != LifecycleStatus.ACTIVE:
            raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                           {"status": environment.status})
        backup = new_backup(environment, backup_scope, BackupReason.MANUAL, config)
        return enqueue_job("backup_create", environment=environment, user=user,
                           payload={"backup_id": str(backup.pk), "backup_scope": backup_scope})


def new_backup(environment, backup_scope: str, reason: str, config: storage.BackupStorage) -> Backup:
    """A pending Backup row of the environment (its job makes it)."""
    return Backup.objects.create(
        environment=environment, site_id=environment.site_id, site_slug=environment.site.slug,
        environment_slug=environment.slug, environment_uid=environment.pk, environment_url=environment.preview_url,
        backup_scope=backup_scope, reason=reason, storage_type=StorageType.S3,
        storage_path=config.repository_location(environment.site_id),
        retention_until=timezone.now() + retention_for(environment),
    )


# --- final backups ------------------------------------------------------------
# Deleting an environment or a site first takes a full backup of each
# environment that goes, kept for the environment's retention, unless the
# operator opts out. Without backup storage the deletion still goes ahead and
# its job log says that no final backup was taken (backups are off, as the
# admin and scripts/run say); the admin's confirmation page says it first.

FINAL_BACKUPS = "final_backups"  # payload: {environment id: backup id}
NO_FINAL_BACKUP = "no_final_backup"  # payload: why none is taken


SKIP_FINAL_BACKUP_OPTION = "skip_final_backup"  # the admin's checkbox on a delete confirmation


def final_backup_confirmation() -> dict:
    """What a delete confirmation in the admin adds: the opt-out checkbox, and
    a warning when backups are off (no final backup can be taken)."""
    if storage.configured_storage() is None:
        return {"warnings": ["Backups are off (no backup storage is configured): no final backup will be "
                             "taken, and the data cannot be brought back. This cannot be undone."]}
    return {"options": [(SKIP_FINAL_BACKUP_OPTION, "Skip the final backup: delete without keeping a copy")],
            "warnings": ["This cannot be undone. A full final backup of each environment is taken first and "
                         "kept for the environment's retention, unless you tick the box below."]}


def final_backup_payload(environments, final_backup: bool) -> dict:
    """Called in the deleting service's transaction: pending final backups of
    ``environments`` and what the delete job's payload says about them."""
    if not final_backup:
        return {NO_FINAL_BACKUP: "the operator opted out"}
    config = storage.configured_storage()
    if config is None:
        return {NO_FINAL_BACKUP: "backup storage is not configured (backups are off)"}
    return {FINAL_BACKUPS: {str(environment.pk): str(new_backup(environment, BackupScope.FULL,
                                                                 BackupReason.FINAL, config).pk)
                            for environment in environments}}


ENVIRONMENT_DELETED = "its environment was deleted before the backup was taken; nothing was stored"


def forget_environment_backups(environment_ids) -> None:
    """Before an environment's rows go: its completed backups stay (they
    outlive it); those never taken are failed, as nothing will take them."""
    for backup in Backup.objects.filter(environment_id__in=list(environment_ids),
                                        status__in=(BackupStatus.PENDING, BackupStatus.RUNNING)):
        mark_failed(backup, "backup_environment_deleted", ENVIRONMENT_DELETED)


# --- retention ----------------------------------------------------------------

def past_retention(now=None):
    """Backups whose stored data backup_cleanup must remove: completed or
    failed (a failed run may have stored a part), past ``retention_until``,
    not removed yet."""
    return Backup.objects.filter(status__in=(BackupStatus.COMPLETED, BackupStatus.FAILED),
                                 retention_until__lte=now or timezone.now(), purged_at__isnull=True)


def record_purged(backup_ids) -> int:
    """After backup_cleanup removed their snapshots: completed ones become
    ``expired``; failed ones stay failed. Both are marked purged."""
    now = timezone.now()
    count = 0
    for backup in Backup.objects.filter(pk__in=list(backup_ids), purged_at__isnull=True):
        changes = {"purged_at": now}
        if backup.status == BackupStatus.COMPLETED:
            changes["status"] = BackupStatus.EXPIRED
        change_state(backup, **changes)
        count += 1
    return count


def checksum_of(parts: dict) -> str:
    """One SHA-256 over the parts' stream digests: restore recomputes it from
    what it reads back (``restic restore`` of each snapshot)."""
    text = "".join(f"{name}:{parts[name]['sha256']}\n" for name in sorted(parts))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def mark_running(backup: Backup, job: Job | None) -> Backup:
    """Taken now by ``job`` (the running job): a failure of an earlier run is forgotten."""
    return change_state(backup, status=BackupStatus.RUNNING, completed_at=None, job=job,
                        error_code=None, error_message=None)


FAILURE_MESSAGE_LENGTH = Backup._meta.get_field("error_message").max_length
REDACTED = "[redacted]"


def mark_failed(backup: Backup, code: str, message: str) -> Backup:
    """The backup ended without completing, and why: ``code`` a registered job
    error code (another becomes ``internal_error``), ``message`` made one
    short line with the secrets the backup's paths know replaced (see
    ``failure_message``)."""
    if code not in JOB_ERROR_CODES:
        code = "internal_error"
    return change_state(backup, status=BackupStatus.FAILED, error_code=code,
                        error_message=failure_message(backup, message))


def failure_message(backup: Backup, message: str) -> str:
    """One line of at most FAILURE_MESSAGE_LENGTH characters. Messages come
    from JobError (the node programs name no secret), but a tool's stderr tail
    is quoted in some: the storage keys, the site's repository password and
    the environment's database password are replaced wherever they appear."""
    text = " ".join(str(message or "").split()) or "no reason was reported"
    for secret in _secrets_of(backup):
        text = text.replace(secret, REDACTED)
    if len(text) > FAILURE_MESSAGE_LENGTH:
        text = text[:FAILURE_MESSAGE_LENGTH - 1].rstrip() + "…"
    return text


def _secrets_of(backup: Backup) -> list[str]:
    from apps.backups.models import BackupRepository

    values = storage.effective_values()
    found = [values.get("access_key_id"), values.get("secret_access_key")]
    repository = BackupRepository.objects.filter(site_id=backup.site_id).first()
    if repository is not None:
        found.append(repository.password)
    environment = Environment.objects.filter(pk=backup.environment_id).first() if backup.environment_id else None
    if environment is not None:
        found.append(environment.db_password)
    # Longest first (one may hold another); too short to be a secret: a word of the message.
    return sorted({secret for secret in found if secret and len(secret) >= 6}, key=len, reverse=True)


def fail_unfinished_backups(job: Job, was_running: bool) -> list[Backup]:
    """Called as ``job``'s run ends other than succeeded (jobs' ending hook, in
    end_run's transaction): the backups it was taking or was asked to take,
    still ``running`` or ``pending``, become ``failed`` with the job's reason.

    Running ones: those it took (Backup.job) — left so when its worker died,
    it ran out of time or stopped where no handler code ran. Pending ones:
    those its payload names (backup_create's backup, a deletion's final
    backups), once the job has ended (cancelled before it ran, refused at its
    claim, failed before it got to them); a job requeued to run again still
    takes them.
    """
    code, message = _why_job_ended(job, was_running)
    ended = []
    if was_running:
        for backup in Backup.objects.select_for_update(no_key=True).filter(job=job, status=BackupStatus.RUNNING):
            ended.append(mark_failed(backup, code, message))
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        named = list((job.payload or {}).get(FINAL_BACKUPS, {}).values())
        if job.job_type == "backup_create" and (job.payload or {}).get("backup_id"):
            named.append(job.payload["backup_id"])
        for backup in Backup.objects.select_for_update(no_key=True).filter(pk__in=named, status=BackupStatus.PENDING):
            ended.append(mark_failed(backup, code, f"not taken: {message}"))
    return ended


def _why_job_ended(job: Job, was_running: bool) -> tuple[str, str]:
    if job.status == JobStatus.CANCELLED:
        when = "while it ran" if was_running else "before it ran"
        return "job_cancelled", f"{job.job_type} {job.pk} was cancelled by an operator {when}."
    return job.error_code or "internal_error", f"{job.job_type} {job.pk}: {job.error_message or 'no reason was recorded'}"


def record_completed(backup: Backup, result: dict, location: str) -> Backup:
    parts = {name: dict(part) for name, part in result["parts"].items()}
    if result.get("release"):
        parts["files"]["release"] = result["release"]
    now = timezone.now()
    retention = retention_for(backup.environment) if backup.environment_id else None
    return change_state(
        backup,
        status=BackupStatus.COMPLETED,
        error_code=None,
        error_message=None,
        storage_path=location,
        parts=parts,
        checksum=checksum_of(parts),
        size_bytes=sum(part["bytes"] for part in parts.values()),
        added_bytes=sum(part["added_bytes"] for part in parts.values()),
        completed_at=now,
        retention_until=now + retention if retention else backup.retention_until,
    )


# --- restore ---------------------------------------------------------------------------------------

def restorable_problem(backup: Backup, environment: Environment) -> ApiError | None:
    """Why ``backup`` cannot be put into ``environment`` (None: it can). The
    backup's environment may be gone (a final backup): its site id still says whose it is."""
    if backup.site_id != environment.site_id:
        return ApiError("backup_of_another_site", "The backup belongs to another site; a site is restored only from "
                        "its own backups.", {"backup_site_id": str(backup.site_id)})
    if backup.status != BackupStatus.COMPLETED:
        return ApiError("backup_not_restorable", f"The backup is {backup.status}, not completed.",
                        {"status": backup.status})
    if not backup.parts or backup.checksum != checksum_of(backup.parts):
        return ApiError("backup_not_restorable", "The backup's record does not match its checksum; it cannot be "
                        "verified.", {"status": backup.status})
    if backup.environment_id != environment.pk and rewrite_source(backup) is None:
        return ApiError("backup_not_restorable", "The backup's environment is gone and the backup does not record "
                        "its URL, so its URLs cannot be rewritten for another environment.", {"status": backup.status})
    return None


def rewrite_source(backup: Backup) -> dict | None:
    """What a restore into another environment rewrites from: the URL and
    system name of the environment backed up (kept on the backup for when
    that environment is gone). None: not known."""
    if backup.environment is not None:
        return {"from_url": backup.environment.preview_url,
                "from_system_name": naming.system_name(backup.environment)}
    if backup.environment_uid and backup.environment_url:
        return {"from_url": backup.environment_url, "from_system_name": f"pl{backup.environment_uid.hex[:12]}"}
    return None


def _backup_for_restore(backup_id) -> Backup:
    backup = Backup.objects.select_related("environment__site").filter(pk=backup_id).first()
    if backup is None:
        raise ApiError("bad_request", "No backup with this id.", {"fields": {"backup_id": ["unknown backup"]}})
    return backup


def request_restore(environment_id, backup_id, user=None):
    """Queue ``env_restore`` of one of the site's completed backups into the environment.

    Refused, with nothing queued: 400 for an unknown backup, 409
    ``backup_of_another_site``, ``backup_not_restorable`` (not completed),
    ``backup_storage_not_configured``, ``environment_not_active``.
    Returns the job.
    """
    with transaction.atomic():
        environment = (Environment.objects.select_for_update(no_key=True).select_related("site", "node")
                       .filter(pk=environment_id).first())
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        backup = _backup_for_restore(backup_id)
        problem = restorable_problem(backup, environment)
        if problem is not None:
            raise problem
        if storage.configured_storage() is None:
            raise storage_not_configured()
        if environment.status != LifecycleStatus.ACTIVE:
            raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                           {"status": environment.status})
        return enqueue_job("env_restore", environment=environment, user=user,
                           payload={"backup_id": str(backup.pk), "release": naming.new_release_name()})


def request_restore_as_clone(backup_id, *, name: str = "", slug: str = "", user=None):
    """A new clone environment of the backup's site with the backup put into it;
    production (and every other environment) untouched.

    ``env_create`` copies the backup's environment (or production, if that one
    is not active), then ``env_restore`` (queued behind it, the site's jobs
    run one at a time) puts the backup in. Returns the restore job; its
    environment is the new one.
    """
    from apps.environments import services as environment_services

    from apps.sites.models import Site

    backup = _backup_for_restore(backup_id)
    site = Site.objects.filter(pk=backup.site_id).first()
    if site is None:
        raise ApiError("backup_site_deleted", "The backup's site is deleted: there is no site to make a clone "
                       "environment in.", {"site_slug": backup.site_slug})
    production = site.environments.filter(environment_type=EnvironmentType.PRODUCTION).first()
    # The backup's environment when it is still there and active, else production.
    if backup.environment is not None and backup.environment.status == LifecycleStatus.ACTIVE:
        source = backup.environment
    else:
        source = production
    if source is None:
        raise ApiError("conflict", "The site has no active environment to build the clone from.")
    problem = restorable_problem(backup, source)
    if problem is not None:
        raise problem
    if storage.configured_storage() is None:
        raise storage_not_configured()
    stamp = timezone.localtime(backup.completed_at or backup.created_at)
    slug = slug or f"restore-{stamp:%Y%m%d-%H%M%S}"
    name = name or f"Restore of {backup.environment_slug or source.slug} ({stamp:%Y-%m-%d %H:%M})"
    with transaction.atomic():
        create = environment_services.create_environment(
            site_id=site.pk, name=name, slug=slug, environment_type=EnvironmentType.CLONE,
            source_environment_id=source.pk, user=user,
        )
        return enqueue_job("env_restore", environment=create.environment, user=user,
                           payload={"backup_id": str(backup.pk), "release": naming.new_release_name(),
                                    "new_environment": True, "env_create_job_id": str(create.pk)})


def queue_restore_cleanup(environment: Environment, restore_job: Job) -> Job:
    """After a restore judged healthy: ``restore_cleanup`` of what it kept aside
    for its way back, queued as the restore's job ends (so the verdict does not
    wait for it). It is ranked as if queued with the restore (its creation time
    is the restore's), so it is the site's next job: nothing queued meanwhile
    (another restore, a deletion) finds the previous state still aside."""
    job = enqueue_job("restore_cleanup", environment=environment,
                      payload={"restore_job_id": str(restore_job.pk)})
    Job.objects.filter(pk=job.pk).update(created_at=restore_job.created_at)
    return job


def start_pre_restore_backup(environment: Environment, config: storage.BackupStorage, job: Job) -> Backup:
    """The full backup a restore takes before it changes anything (made by the restore job itself)."""
    return mark_running(new_backup(environment, BackupScope.FULL, BackupReason.PRE_RESTORE, config), job)


def discard_pre_restore_backup(backup: Backup) -> None:
    """A restore whose checks failed or refused the backup takes no pre-restore
    backup: the row made for the one taken beside the checks goes (the node
    forgot the snapshots it had stored)."""
    backup.delete()


# --- the restore drill ------------------------------------------------------------------------------

def latest_backup(site) -> Backup | None:
    """The site's newest completed backup (of any of its environments)."""
    return (Backup.objects.filter(site_id=site.pk, status=BackupStatus.COMPLETED)
            .select_related("environment").order_by("-completed_at").first())


def drill_due_sites():
    """(site, its production, its latest backup) for every site with a
    completed backup and no drill within ``BACKUP_DRILL_EVERY_DAYS``."""
    from django.conf import settings
    from django.db.models import Max

    from apps.sites.models import Site

    if settings.BACKUP_DRILL_EVERY_DAYS <= 0 or storage.configured_storage() is None:
        return
    since = timezone.now() - timedelta(days=settings.BACKUP_DRILL_EVERY_DAYS)
    for site in Site.objects.filter(status=LifecycleStatus.ACTIVE).order_by("slug"):
        production = site.environments.filter(environment_type=EnvironmentType.PRODUCTION,
                                              status=LifecycleStatus.ACTIVE).select_related("node").first()
        backup = latest_backup(site)
        if production is None or backup is None:
            continue
        last = Backup.objects.filter(site_id=site.pk).aggregate(
            verified=Max("verified_at"), failed=Max("verify_failed_at"))
        if any(moment and moment > since for moment in last.values()):
            continue  # drilled within the interval
        yield site, production, backup


def request_drill(backup_id, user=None):
    """Queue ``backup_drill`` of one completed backup now (the admin's "Verify by a restore drill")."""
    from apps.sites.models import Site

    backup = _backup_for_restore(backup_id)
    site = Site.objects.filter(pk=backup.site_id).first()
    production = (site.environments.filter(environment_type=EnvironmentType.PRODUCTION).select_related("node").first()
                  if site is not None else None)
    if production is None:
        raise ApiError("conflict", "The site has no production environment to copy for the drill.")
    problem = restorable_problem(backup, production)
    if problem is not None:
        raise problem
    if storage.configured_storage() is None:
        raise storage_not_configured()
    return enqueue_job("backup_drill", site=site, node=production.node, user=user,
                       payload={"backup_id": str(backup.pk)})


DRILL_SLUG_PREFIX = "drill-"


def drill_throwaway_slug(job) -> str:
    return f"{DRILL_SLUG_PREFIX}{job.pk.hex[:8]}"


def is_drill_throwaway(environment: Environment) -> bool:
    """Whether ``environment`` is a restore drill's throwaway copy (left
    behind by a drill that died): it goes without a final backup."""
    from apps.jobs.models import Job

    if not environment.slug.startswith(DRILL_SLUG_PREFIX) or environment.environment_type != EnvironmentType.CLONE:
        return False
    return any(drill_throwaway_slug(job) == environment.slug
               for job in Job.objects.filter(job_type="backup_drill", site_id=environment.site_id).only("pk"))


def record_drill(backup: Backup, healthy: bool, message: str) -> Backup:
    now = timezone.now()
    backup.refresh_from_db()
    if healthy:
        return change_state(backup, verified_at=now, verify_message=message)
    return change_state(backup, verify_failed_at=now, verify_message=message[:2000])


def drill_state(backup: Backup | None) -> str:
    """"verified", "failing", "unverified" or "none" (no backup): what the admin shows per site."""
    if backup is None:
        return "none"
    if backup.verify_failed_at and (backup.verified_at is None or backup.verify_failed_at > backup.verified_at):
        return "failing"
    return "verified" if backup.verified_at else "unverified"
