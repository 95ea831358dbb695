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


def create_backup(environment, backup, config: storage.BackupStorage, ctx=None) -> dict:
    params = {
        "system_name": naming.system_name(environment),
        "root": naming.root(environment),
        "scope": backup.backup_scope,
        "backup_id": str(backup.pk),
        "environment_id": str(environment.pk),
        "repository": repository_params(environment.site, config),
    }
    return run_program(environment.node, "backup_create.py", params, ctx=ctx, timeout=BACKUP_PROGRAM_TIMEOUT)


RESTORE_PROGRAM_TIMEOUT = 2 * 60 * 60


def restore_parts(backup) -> dict:
    """What the node checks each part against: restic's snapshot, the stream's SHA-256 and length."""
    return {name: {"snapshot_id": part["snapshot_id"], "sha256": part["sha256"], "bytes": int(part["bytes"])}
            for name, part in backup.parts.items()}


def restore_phase(environment, phase: str, *, work: str, ctx=None, **extra) -> dict:
    """One phase of remote/env_restore.py (fetch, apply, revert, cleanup) for ``environment``."""
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
