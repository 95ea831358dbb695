"""Backups: requesting one, final backups of what is deleted, recording what
the node stored, and which backups are past their retention."""

import hashlib

from django.db import transaction
from django.utils import timezone

from apps.backups import storage
from apps.backups.choices import BackupReason, BackupScope, BackupStatus, StorageType
from apps.backups.models import Backup
from apps.backups.schedules import retention_for
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.environments.models import Environment
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
        environment_slug=environment.slug, backup_scope=backup_scope, reason=reason, storage_type=StorageType.S3,
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


def forget_environment_backups(environment_ids) -> None:
    """Before an environment's rows go: its completed backups stay (they
    outlive it); those never taken are failed, as nothing will take them."""
    for backup in Backup.objects.filter(environment_id__in=list(environment_ids),
                                        status__in=(BackupStatus.PENDING, BackupStatus.RUNNING)):
        change_state(backup, status=BackupStatus.FAILED)


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
    what it reads back (``restic dump`` of each snapshot)."""
    text = "".join(f"{name}:{parts[name]['sha256']}\n" for name in sorted(parts))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def mark_running(backup: Backup) -> Backup:
    return change_state(backup, status=BackupStatus.RUNNING, completed_at=None)


def mark_failed(backup: Backup) -> Backup:
    return change_state(backup, status=BackupStatus.FAILED)


def record_completed(backup: Backup, result: dict, location: str) -> Backup:
    parts = {name: dict(part) for name, part in result["parts"].items()}
    if result.get("release"):
        parts["files"]["release"] = result["release"]
    now = timezone.now()
    retention = retention_for(backup.environment) if backup.environment_id else None
    return change_state(
        backup,
        status=BackupStatus.COMPLETED,
        storage_path=location,
        parts=parts,
        checksum=checksum_of(parts),
        size_bytes=sum(part["bytes"] for part in parts.values()),
        added_bytes=sum(part["added_bytes"] for part in parts.values()),
        completed_at=now,
        retention_until=now + retention if retention else backup.retention_until,
    )
