"""Backups: requesting one, and recording what the node stored."""

import hashlib

from django.db import transaction
from django.utils import timezone

from apps.backups import storage
from apps.backups.choices import BackupScope, BackupStatus, StorageType
from apps.backups.models import DEFAULT_RETENTION, Backup
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
        backup = Backup.objects.create(
            environment=environment, backup_scope=backup_scope, storage_type=StorageType.S3,
            storage_path=config.repository_location(environment.site_id),
        )
        return enqueue_job("backup_create", environment=environment, user=user,
                           payload={"backup_id": str(backup.pk), "backup_scope": backup_scope})


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
    return change_state(
        backup,
        status=BackupStatus.COMPLETED,
        storage_path=location,
        parts=parts,
        checksum=checksum_of(parts),
        size_bytes=sum(part["bytes"] for part in parts.values()),
        added_bytes=sum(part["added_bytes"] for part in parts.values()),
        completed_at=now,
        retention_until=now + DEFAULT_RETENTION,
    )
