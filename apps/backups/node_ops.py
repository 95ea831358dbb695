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


CLEANUP_PROGRAM_TIMEOUT = 2 * 60 * 60


def clean_up(node, repository, config: storage.BackupStorage, *, backup_ids: list[str], snapshot_ids: list[str],
             ctx=None) -> dict:
    """Forget these snapshots (and any tagged with these backups) in the site's
    repository, then prune. ``repository`` is the site's BackupRepository row
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
    }
    return run_program(node, "backup_cleanup.py", params, ctx=ctx, timeout=CLEANUP_PROGRAM_TIMEOUT)
