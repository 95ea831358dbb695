#!/usr/bin/env python3
"""backup_cleanup: remove backups past their retention from a site's restic repository.

Parameters (JSON on stdin), all produced by the panel:
  repository    {"url", "password", "access_key_id", "secret_access_key", "region"}
  backup_ids    the panel's Backups past retention
  snapshot_ids  their snapshots, as recorded when they completed
  keep_ids      snapshots kept backups name (a backup of unchanged files
                names the snapshot of an earlier one): never forgotten

Forgets every snapshot named in ``snapshot_ids`` or tagged ``backup:<id>``
with one of ``backup_ids`` (a failed backup may have stored one part), then
prunes: the data no remaining snapshot uses is deleted from the bucket. Other
snapshots are never touched. Safe to re-run: snapshots already gone are skipped.

Result: {"forgotten": [snapshot ids], "snapshots_left": n, "repository_missing": bool}.
"""

import json
import os

from backup_create import CACHE_DIR, READ_ONLY, RESTIC, _tail, restic
from nodelib import NodeError, info, main, step

PRUNE_TIMEOUT = 2 * 60 * 60


def _snapshots(repository: dict) -> list[dict]:
    listed = restic(repository, [*READ_ONLY, "snapshots", "--json"])
    if listed.returncode != 0:
        raise NodeError("backup_storage_failed", f"restic cannot list the snapshots: {_tail(listed.stderr)}",
                        retryable=True)
    try:
        return json.loads(listed.stdout) or []
    except ValueError:
        raise NodeError("backup_storage_failed", "restic listed the snapshots in a form this program does not "
                        "read", retryable=True) from None


def clean_up(params: dict) -> dict:
    repository = params["repository"]
    backup_tags = {f"backup:{backup_id}" for backup_id in params["backup_ids"]}
    wanted_ids = set(params["snapshot_ids"])
    keep_ids = set(params.get("keep_ids") or ())
    if not os.path.exists(RESTIC):
        raise NodeError("remote_step_failed", "restic is not installed on this node; provision it again")
    os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)

    step("backup repository")
    found = restic(repository, [*READ_ONLY, "cat", "config"])
    if found.returncode != 0:
        if "Is there a repository at the following location?" in found.stderr:
            info("the site's repository does not exist: nothing is stored")
            return {"forgotten": [], "snapshots_left": 0, "repository_missing": True}
        raise NodeError("backup_storage_failed", f"the backup repository cannot be opened: {_tail(found.stderr)}",
                        retryable=True)
    restic(repository, ["unlock"])  # stale locks of a killed run only

    snapshots = _snapshots(repository)
    doomed = sorted(snapshot["id"] for snapshot in snapshots
                    if (snapshot.get("id") in wanted_ids or backup_tags & set(snapshot.get("tags") or ()))
                    and snapshot.get("id") not in keep_ids)
    kept = len([snapshot for snapshot in snapshots if snapshot.get("id") in keep_ids
                and (snapshot.get("id") in wanted_ids or backup_tags & set(snapshot.get("tags") or ()))])
    if kept:
        info(f"{kept} snapshot(s) of these backups stay: later backups name them")
    step(f"forget {len(doomed)} snapshot(s)")
    if doomed:
        forgot = restic(repository, ["forget", *doomed], timeout=600)
        if forgot.returncode != 0:
            raise NodeError("backup_storage_failed", f"restic could not forget the snapshots: {_tail(forgot.stderr)}",
                            retryable=True)
    for snapshot_id in doomed:
        info(f"forgot snapshot {snapshot_id[:8]}")

    step("prune the data no snapshot uses")
    pruned = restic(repository, ["prune"], timeout=PRUNE_TIMEOUT)
    if pruned.returncode != 0:
        raise NodeError("backup_storage_failed", f"restic could not prune the repository: {_tail(pruned.stderr)}",
                        retryable=True)
    for line in pruned.stdout.splitlines():
        if "will delete" in line or "this removes" in line or "total prune" in line:
            info(line.strip())
    left = len(snapshots) - len(doomed)
    info(f"{left} snapshot(s) left in the repository")
    return {"forgotten": doomed, "snapshots_left": left, "repository_missing": False}


if __name__ == "__main__":
    main(clean_up)
