"""What the panel asks a node to do for backups: parameters (data only) for one node program."""

from apps.backups import storage
from apps.environments import naming
from apps.nodes.remote_exec import run_program

BACKUP_PROGRAM_TIMEOUT = 2 * 60 * 60


def repository_params(site, config: storage.BackupStorage) -> dict:
    """The site's repository with its password and the storage keys: sent as
    JSON on stdin, handed by the node to restic's own environment only."""
    return {
        "url": config.repository_url(site.pk),
        "password": storage.repository_password(site),
        "access_key_id": config.access_key_id,
        "secret_access_key": config.secret_access_key,
        "region": config.region,
    }


def previous_files(environment, backup) -> dict | None:
    """The files part of the environment's latest completed backup still
    stored: the node reuses its snapshot when the files did not change."""
    from apps.backups.choices import BackupStatus
    from apps.backups.models import Backup

    for earlier in (Backup.objects.filter(environment=environment, status=BackupStatus.COMPLETED,
                                          purged_at__isnull=True).exclude(pk=backup.pk).order_by("-completed_at")):
        files = earlier.parts.get("files")
        if files and files.get("fingerprint"):
            return {"backup_id": str(earlier.pk), **{key: files[key] for key in
                                                     ("snapshot_id", "sha256", "bytes", "fingerprint")}}
        if files:
            return None  # the latest files part has no fingerprint: back the files up
    return None


def repository_known(site_id, config: storage.BackupStorage) -> bool:
    """Whether a backup of the site completed in this very repository (then it exists)."""
    from apps.backups.choices import BackupStatus
    from apps.backups.models import Backup

    return Backup.objects.filter(site_id=site_id, status__in=(BackupStatus.COMPLETED, BackupStatus.EXPIRED),
                                 storage_path=config.repository_location(site_id)).exists()


def backup_params(environment, backup, config: storage.BackupStorage) -> dict:
    """What backup_create.py needs to make ``backup`` of ``environment`` (also
    handed to env_restore.py's restore phase for the pre-restore backup)."""
    return {
        "system_name": naming.system_name(environment),
        "root": naming.root(environment),
        "scope": backup.backup_scope,
        "backup_id": str(backup.pk),
        "environment_id": str(environment.pk),
        "repository": repository_params(environment.site, config),
        "previous_files": previous_files(environment, backup),
        "repository_known": repository_known(environment.site_id, config),
    }


def create_backup(environment, backup, config: storage.BackupStorage, ctx=None) -> dict:
    params = backup_params(environment, backup, config)
    return run_program(environment.node, "backup_create.py", params, ctx=ctx, timeout=BACKUP_PROGRAM_TIMEOUT)


RESTORE_PROGRAM_TIMEOUT = 2 * 60 * 60


def restore_parts(backup) -> dict:
    """What the node checks each part against: restic's snapshot, the stream's SHA-256 and length."""
    return {name: {"snapshot_id": part["snapshot_id"], "sha256": part["sha256"], "bytes": int(part["bytes"])}
            for name, part in backup.parts.items()}


def restore_phase(environment, phase: str, *, work: str, ctx=None, **extra) -> dict:
    """One phase of remote/env_restore.py (restore, revert, cleanup) for ``environment``."""
    params = {
        "phase": phase,
        "system_name": naming.system_name(environment),
        "root": naming.root(environment),
        "url": environment.preview_url,
        "work": work,
        "redis": {"key_prefix": naming.redis_key_prefix(environment)},
        **extra,
    }
    return run_program(environment.node, "env_restore.py", params, ctx=ctx, timeout=RESTORE_PROGRAM_TIMEOUT)


CLEANUP_PROGRAM_TIMEOUT = 2 * 60 * 60


def clean_up(node, repository, config: storage.BackupStorage, *, backup_ids: list[str], snapshot_ids: list[str],
             keep_ids: list[str], ctx=None) -> dict:
    """Forget these snapshots (and any tagged with these backups) in the site's
    repository, but never one in ``keep_ids`` (still named by a kept backup), then prune. ``repository`` is the site's BackupRepository row
    (the site itself may be gone)."""
    params = {
        "repository": {
            "url": config.repository_url(repository.site_id),
            "password": repository.password,
            "access_key_id": config.access_key_id,
            "secret_access_key": config.secret_access_key,
            "region": config.region,
        },
        "backup_ids": backup_ids,
        "snapshot_ids": snapshot_ids,
        "keep_ids": keep_ids,
    }
    return run_program(node, "backup_cleanup.py", params, ctx=ctx, timeout=CLEANUP_PROGRAM_TIMEOUT)
