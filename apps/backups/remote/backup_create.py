#!/usr/bin/env python3
"""backup_create: back an environment up into its site's restic repository.

Parameters (JSON on stdin), all produced by the panel:
  system_name   the environment's Linux user (and database name)
  root          the environment's directory
  scope         "db", "files" or "full"
  backup_id     the panel's Backup row (a tag on every snapshot)
  environment_id
  repository    {"url", "password", "access_key_id", "secret_access_key", "region"}

Each part is one stream piped through this program into ``restic backup
--stdin``, which deduplicates it against everything in the repository (all
environments of the site) and encrypts it; nothing is written to the node's
disk. This program hashes the stream on the way (SHA-256), so restore can
verify what it reads back.

- db: ``mariadb-dump --single-transaction`` of the environment's database.
- files: a tar stream of the current release, shared/wp-config.php and
  shared/uploads, made by the environment's own Linux user: it reads only
  what the site itself can read, links stay links, and nothing the site
  plants in its uploads (links, directories swapped for links while the
  backup runs) can make root read outside the environment. Caches are left out.

Secrets (the repository password, the S3 keys) reach restic only through its
own environment (readable by root alone); the commands that read the site run
with a clean environment.

Result: {"release", "parts": {"db"|"files": {"snapshot_id", "sha256", "bytes", "added_bytes"}}}.
"""

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import env_setup
import safe_fs
import services
from nodelib import NodeError, info, main, step

RESTIC = "/usr/bin/restic"
CACHE_DIR = "/var/cache/pressluft/restic"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 1024 * 1024
SCOPES = {"db": ("db",), "files": ("files",), "full": ("db", "files")}
# Not worth keeping: rebuilt by WordPress and its plugins.
FILES_EXCLUDED = ("wp-content/cache", "wp-content/upgrade")
KEEP_STDERR = 64 * 1024


def restic_env(repository: dict) -> dict:
    return {
        "PATH": PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "RESTIC_REPOSITORY": repository["url"],
        "RESTIC_PASSWORD": repository["password"],
        "RESTIC_CACHE_DIR": CACHE_DIR,
        "AWS_ACCESS_KEY_ID": repository["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": repository["secret_access_key"],
    }


def restic_options(repository: dict) -> list[str]:
    region = repository.get("region") or ""
    return ["-o", f"s3.region={region}"] if region else []


def _tail(data: bytes | str, lines: int = 3) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return " | ".join(text.strip().splitlines()[-lines:])[-400:]


def restic(repository: dict, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([RESTIC, *restic_options(repository), *args], capture_output=True, text=True,
                          env=restic_env(repository), timeout=timeout, cwd="/")


def ensure_repository(repository: dict) -> bool:
    """The site's repository, created on first use. True if it was created."""
    os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
    found = restic(repository, ["cat", "config"])
    if found.returncode == 0:
        return False
    if "Is there a repository at the following location?" not in found.stderr:
        raise NodeError("backup_storage_failed", f"the backup repository cannot be opened: {_tail(found.stderr)}",
                        retryable=True)
    created = restic(repository, ["init"])
    if created.returncode != 0:
        if restic(repository, ["cat", "config"]).returncode == 0:
            return False  # made meanwhile by another run
        raise NodeError("backup_storage_failed", f"the backup repository cannot be created: {_tail(created.stderr)}",
                        retryable=True)
    return True


def _drain(stream, keep: list, limit: int) -> None:
    buffer = bytearray()
    while chunk := stream.read(65536):
        buffer += chunk
        if len(buffer) > limit:
            del buffer[: len(buffer) - limit]
    keep.append(bytes(buffer))


def _restic_summary(stream, found: list) -> None:
    """restic --json prints progress lines, then one summary line."""
    for line in stream:
        if b'"summary"' in line:
            try:
                found.append(json.loads(line))
            except ValueError:
                pass


def stream_into_restic(repository: dict, producer: list[str], *, filename: str, tags: list[str], host: str,
                       what: str, accept_exit=(0,)) -> dict:
    """Run ``producer``, pipe its output through a hash into ``restic backup
    --stdin``; a producer that fails leaves no snapshot (restic is killed
    before it sees the end of its input)."""
    command = [RESTIC, *restic_options(repository), "backup", "--json", "--stdin", "--stdin-filename", filename,
               "--host", host]
    for tag in tags:
        command += ["--tag", tag]
    backup = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=restic_env(repository), cwd="/")
    source = subprocess.Popen(producer, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={"PATH": PATH, "LANG": "C.UTF-8"}, cwd="/")
    summaries, restic_err, source_err = [], [], []
    readers = [
        threading.Thread(target=_restic_summary, args=(backup.stdout, summaries), daemon=True),
        threading.Thread(target=_drain, args=(backup.stderr, restic_err, KEEP_STDERR), daemon=True),
        threading.Thread(target=_drain, args=(source.stderr, source_err, KEEP_STDERR), daemon=True),
    ]
    for reader in readers:
        reader.start()
    digest, size, restic_gone = hashlib.sha256(), 0, False
    try:
        while chunk := source.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            try:
                backup.stdin.write(chunk)
            except BrokenPipeError:
                restic_gone = True
                break
        source.stdout.close()
        source.wait()
        if source.returncode not in accept_exit or restic_gone:
            backup.kill()  # before its input ends: no snapshot of a broken stream
        try:
            backup.stdin.close()
        except BrokenPipeError:
            pass
        backup.wait()
    finally:
        for process in (source, backup):
            if process.poll() is None:
                process.kill()
                process.wait()
        for reader in readers:
            reader.join(timeout=10)
    if source.returncode not in accept_exit:
        raise NodeError("remote_step_failed", f"{what} exited {source.returncode}: {_tail(b''.join(source_err))}")
    if backup.returncode != 0 or not summaries:
        raise NodeError("backup_storage_failed",
                        f"restic could not store the {what}: {_tail(b''.join(restic_err))}", retryable=True)
    summary = summaries[-1]
    snapshot = full_snapshot_id(repository, summary.get("snapshot_id") or "")
    info(f"{filename}: {size} bytes, {summary.get('data_added', 0)} new, snapshot {snapshot[:8]}")
    return {"snapshot_id": snapshot, "sha256": digest.hexdigest(), "bytes": size,
            "added_bytes": int(summary.get("data_added") or 0)}


def full_snapshot_id(repository: dict, short: str) -> str:
    """restic 0.14's summary names the snapshot by a prefix: the whole id is what restore asks for."""
    found = restic(repository, ["snapshots", "--json", short]) if short else None
    try:
        return json.loads(found.stdout)[0]["id"]
    except (AttributeError, ValueError, LookupError, TypeError):
        raise NodeError("backup_storage_failed", f"restic does not list the snapshot it just made ({short!r})",
                        retryable=True) from None


def database_dump(name: str) -> list[str]:
    return ["mariadb-dump", "--single-transaction", "--quick", "--skip-lock-tables", "--routines", "--triggers",
            "--events", "--hex-blob", "--skip-dump-date", "--default-character-set=utf8mb4", name]


def files_archive(name: str, root: str, release: str) -> list[str]:
    """tar of the code and shared/, as the environment's user (see the module's text)."""
    excluded = [f"--exclude=releases/{release}/{path}" for path in FILES_EXCLUDED]
    return ["runuser", "-u", name, "--", "tar", "--create", "--file=-", "--directory", root, "--one-file-system",
            "--sort=name", "--warning=no-file-changed", *excluded,
            f"releases/{release}", "shared/wp-config.php", "shared/uploads"]


def backup(params: dict) -> dict:
    name = params["system_name"]
    if not env_setup.NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    scope = params["scope"]
    if scope not in SCOPES:
        raise NodeError("bad_parameters", f"unknown backup scope {scope!r}")
    root = params["root"]
    repository = params["repository"]
    tags = [f"backup:{params['backup_id']}", f"environment:{params['environment_id']}"]
    if not os.path.exists(RESTIC):
        raise NodeError("remote_step_failed", "restic is not installed on this node; provision it again")

    step("backup repository")
    if ensure_repository(repository):
        info("created the site's backup repository")
    # Locks left by a backup that was killed: restic removes only stale ones.
    restic(repository, ["unlock"])

    result: dict = {"parts": {}}
    if "files" in SCOPES[scope]:
        step("check the environment's layout")
        # As root, before the site's user reads anything: current must be the node's own link.
        release = safe_fs.current_release(Path(root))
        if release is None:
            raise NodeError("remote_step_failed", f"the environment has no current release at {root}")
        result["release"] = release
    if "db" in SCOPES[scope]:
        step("database (mariadb-dump --single-transaction into restic)")
        services.ensure_running("mariadb")
        result["parts"]["db"] = stream_into_restic(
            repository, database_dump(name), filename="database.sql", tags=[*tags, "part:db"], host=name,
            what="mariadb-dump",
        )
    if "files" in SCOPES[scope]:
        step(f"files (release {result['release']} and shared/, read as {name})")
        # GNU tar exits 1 when a file changed while it was read: the site is live, that is no failure.
        result["parts"]["files"] = stream_into_restic(
            repository, files_archive(name, root, result["release"]), filename="files.tar",
            tags=[*tags, "part:files"], host=name, what="tar of the files", accept_exit=(0, 1),
        )
    return result


if __name__ == "__main__":
    main(backup)
