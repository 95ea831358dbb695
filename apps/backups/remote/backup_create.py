#!/usr/bin/env python3
"""backup_create: back an environment up into its site's restic repository.

Parameters (JSON on stdin), all produced by the panel:
  system_name   the environment's Linux user (and database name)
  root          the environment's directory
  scope         "db", "files" or "full"
  backup_id     the panel's Backup row (a tag on every snapshot)
  environment_id
  repository    {"url", "password", "access_key_id", "secret_access_key", "region"}

``repository_known`` (optional): the site's earlier backups used this
repository, so the backup opens it without a separate check first.

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

The database and the files go into restic side by side. The files part is
skipped when a fingerprint of the tree (listed by the site's user: inode,
size, mtime, ctime, mode of every path) equals the one of the environment's
previous backup (``previous_files``) and that snapshot is still stored: the
new backup then names the same snapshot (``reused_from``), as restic would
have stored nothing new anyway.

Once the parts are stored, a repository whose only key is still restic's
calibrated one (made before the node made cheap keys) gets a cheap key
instead, best effort (cheapen_key; docs/backups.md "The repository and its key").

Result: {"release", "parts": {"db"|"files": {"snapshot_id", "sha256", "bytes", "added_bytes"}}}
(files also "fingerprint", and "reused_from" when reused).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import env_setup
import restic_key
import safe_fs
import services
from nodelib import NodeError, info, main, step

RESTIC = "/usr/bin/restic"
SETPRIV = "/usr/bin/setpriv"
CACHE_DIR = "/var/cache/pressluft/restic"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 1024 * 1024
SCOPES = {"db": ("db",), "files": ("files",), "full": ("db", "files")}
# Not worth keeping: rebuilt by WordPress and its plugins.
FILES_EXCLUDED = ("wp-content/cache", "wp-content/upgrade")
KEEP_STDERR = 64 * 1024
SNAPSHOT_ID = re.compile(r"^[0-9a-f]{64}$")


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
    """The site's repository, created on first use. True if it was created.

    Made here (restic_key.create_repository: what ``restic init`` writes,
    with a cheap key and without its seconds of scrypt calibration) where the
    bucket holds nothing yet, restic itself checking the result; else
    ``restic unlock`` is the check (one start of restic): it opens the
    repository and removes only stale locks (those of a killed backup); a
    repository still missing then is made by ``restic init``, its calibrated
    key swapped for a cheap one."""
    with repository_lock(repository):
        return _ensure_repository(repository)


@contextlib.contextmanager
def repository_lock(repository: dict):
    """One creation or key swap per repository at a time on this node (two
    environments of a site backing up at once)."""
    os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(CACHE_DIR, f".create-{hashlib.sha256(repository['url'].encode()).hexdigest()[:32]}"),
                   os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def _ensure_repository(repository: dict) -> bool:
    try:
        info(restic_key.create_repository(repository, lambda: _opens(repository)))
        return True
    except Exception as exc:  # noqa: BLE001 - there already, or the bucket's protocol failed: restic's way
        reason = str(exc)
    found = restic(repository, ["unlock"])
    if found.returncode == 0:
        return False
    if "Is there a repository at the following location?" not in found.stderr:
        raise NodeError("backup_storage_failed", f"the backup repository cannot be opened: {_tail(found.stderr)}",
                        retryable=True)
    info(f"restic init makes the repository ({reason})")
    created = restic(repository, ["init"])
    if created.returncode != 0:
        if _opens(repository):
            return False  # made meanwhile by another run
        raise NodeError("backup_storage_failed", f"the backup repository cannot be created: {_tail(created.stderr)}",
                        retryable=True)
    # A key with cheap scrypt parameters: every later restic start saves the
    # calibrated half second (restic_key.py says why that is safe here).
    try:
        info(restic_key.make_cheap(repository, lambda: _opens(repository)))
    except Exception as exc:  # noqa: BLE001 - best effort: restic's own key stays
        info(f"the repository keeps restic's calibrated key: {exc}")
    return True


# Reading restic commands run without a lock: restic waits 200 ms after making
# a lock (for a competing one to show), which doubled the time of such a check,
# and a lock of theirs, removed as they end, can stall another restic's start
# (see LockChecks). No prune runs meanwhile: the panel runs one job per site.
READ_ONLY = ["--no-lock"]


def _opens(repository: dict) -> bool:
    return restic(repository, [*READ_ONLY, "cat", "config"]).returncode == 0


# The restic processes storing a stream right now.
_storing: set = set()


class LockChecks:
    """restic 0.14 starts by listing the repository's locks and reading each
    one; a lock that another restic removes in between (it ended) is read
    again and again for about 40 s before restic gives up on it. This
    program's restic processes run side by side (the database and the files;
    a restore's pre-restore backup), so none of them is let end (its input
    closed) while another one is still at that check. A restic is past it
    once it prints its first line: restic prints its first status only after
    its lock is made and checked. (Reading restic commands take no lock; no
    other job of the site runs meanwhile, the panel sees to that.)"""

    def __init__(self):
        self._changed = threading.Condition()
        self._checking = 0

    def begin(self) -> None:
        with self._changed:
            self._checking += 1

    def passed(self) -> None:
        with self._changed:
            self._checking -= 1
            self._changed.notify_all()

    def wait_until_passed(self, timeout: float = 120) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._checking == 0, timeout)


lock_checks = LockChecks()


def stop_cleanly(signum, frame) -> None:
    """Stopped (the panel's job cancelled or out of time, the node shutting
    down): every restic still reading a stream is killed first, before its
    input ends, so no snapshot of half a stream is ever stored; then this
    program ends without a result. (The panel's own stop kills the whole
    session with SIGKILL; restic then dies with its parent, ``--pdeathsig``.)"""
    for process in list(_storing):
        try:
            process.kill()
        except OSError:
            pass
    os._exit(128 + signum)


def _drain(stream, keep: list, limit: int) -> None:
    buffer = bytearray()
    while chunk := stream.read(65536):
        buffer += chunk
        if len(buffer) > limit:
            del buffer[: len(buffer) - limit]
    keep.append(bytes(buffer))


def _restic_summary(stream, found: list) -> None:
    """restic --json prints progress lines, then one summary line. Its first
    line (or its end) tells lock_checks that its lock check is behind it."""
    checking = True
    try:
        for line in stream:
            if checking:
                checking = False
                lock_checks.passed()
            if b'"summary"' in line:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
    finally:
        if checking:
            lock_checks.passed()


def stream_into_restic(repository: dict, producer: list[str], *, filename: str, tags: list[str], host: str,
                       what: str, accept_exit=(0,), resolve: bool = True) -> dict:
    """Run ``producer``, pipe its output through a hash into ``restic backup
    --stdin``; a producer that fails leaves no snapshot (restic is killed
    before it sees the end of its input)."""
    command = [RESTIC, *restic_options(repository), "backup", "--json", "--stdin", "--stdin-filename", filename,
               "--host", host]
    for tag in tags:
        command += ["--tag", tag]
    # restic dies with this program's thread (SIGKILL), before it could take the closed pipe for the
    # end of its input and store a snapshot of half a stream (see stop_cleanly).
    lock_checks.begin()
    try:
        backup = subprocess.Popen([SETPRIV, "--pdeathsig", "KILL", "--", *command], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=restic_env(repository), cwd="/")
    except BaseException:
        lock_checks.passed()
        raise
    _storing.add(backup)
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
        else:
            lock_checks.wait_until_passed()  # its end removes its lock (see LockChecks)
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
        _storing.discard(backup)
        for reader in readers:
            reader.join(timeout=10)
    if source.returncode not in accept_exit:
        raise NodeError("remote_step_failed", f"{what} exited {source.returncode}: {_tail(b''.join(source_err))}")
    if backup.returncode != 0 or not summaries:
        raise NodeError("backup_storage_failed",
                        f"restic could not store the {what}: {_tail(b''.join(restic_err))}", retryable=True)
    summary = summaries[-1]
    snapshot = summary.get("snapshot_id") or ""
    if resolve:
        snapshot = full_snapshot_id(repository, snapshot)
    info(f"{filename}: {size} bytes, {summary.get('data_added', 0)} new, snapshot {snapshot[:8]}")
    return {"snapshot_id": snapshot, "sha256": digest.hexdigest(), "bytes": size,
            "added_bytes": int(summary.get("data_added") or 0)}


def full_snapshot_id(repository: dict, short: str) -> str:
    """restic 0.14's summary names the snapshot by a prefix: the whole id is what restore asks for."""
    found = restic(repository, [*READ_ONLY, "snapshots", "--json", short]) if short else None
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


def files_fingerprint(name: str, root: str, release: str) -> str:
    """What the files part would hold, cheaply: every path's inode, size,
    mtime, ctime, mode, type and link target, listed by the environment's own
    user (no link followed). ctime cannot be set back by the site, so a
    changed file always changes this; equal fingerprints mean the same tar."""
    digest = hashlib.sha256(f"v1 {release} {' '.join(FILES_EXCLUDED)}\n".encode())
    lister = subprocess.Popen(
        ["runuser", "-u", name, "--", "find", f"{root}/releases/{release}", f"{root}/shared/wp-config.php",
         f"{root}/shared/uploads", "-xdev", "-printf", "%p\\0%i %s %T@ %C@ %m %y %l\\0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={"PATH": PATH, "LANG": "C.UTF-8"}, cwd="/")
    while chunk := lister.stdout.read(CHUNK):
        digest.update(chunk)
    if lister.wait() != 0:
        return ""  # unreadable somewhere: no reuse, the tar says what is wrong
    return digest.hexdigest()


def _parallel(jobs: dict) -> dict:
    """Run the named callables at once (the database and the files go to
    restic side by side); the first failure is raised once all ended."""
    results, errors = {}, []

    def run(name, job):
        try:
            results[name] = job()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in this thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _snapshot_ids(repository: dict, seen: dict | None = None) -> list[str]:
    """The repository's snapshot ids: the names in its snapshots/ folder, listed
    straight from the bucket (no restic start, no key derivation); restic lists
    them when the bucket cannot be listed that way. The same listing gives the
    names in keys/ (``seen["keys"]``, for cheapen_key)."""
    try:
        listed = restic_key.Bucket(repository).list_folders(("keys", "snapshots"))
        ids = listed["snapshots"]
        if all(SNAPSHOT_ID.match(snapshot_id) for snapshot_id in ids):
            if seen is not None:
                seen["keys"] = listed["keys"]
            return ids
    except Exception:  # noqa: BLE001 - unreachable, refused, unreadable: restic answers instead
        pass
    listed = restic(repository, [*READ_ONLY, "snapshots", "--json"])
    try:
        return [snapshot["id"] for snapshot in json.loads(listed.stdout) or []]
    except (ValueError, LookupError, TypeError):
        raise NodeError("backup_storage_failed", f"restic cannot list the snapshots: {_tail(listed.stderr)}",
                        retryable=True) from None


def _full_id(ids: list[str], short: str) -> str | None:
    found = [snapshot_id for snapshot_id in ids if short and snapshot_id.startswith(short)]
    return found[0] if len(found) == 1 else None


def backup_and_key(params: dict) -> dict:
    """The program: the backup, then (best effort, the backup stored already)
    a calibrated repository key swapped for a cheap one."""
    seen: dict = {}
    result = backup(params, seen)
    if "keys" in seen and not seen.get("created"):
        cheapen_key(params["repository"], seen["keys"])
    return result


def cheapen_key(repository: dict, keys: list[str]) -> None:
    """A repository made before the node made cheap keys (or whose swap after
    ``restic init`` failed) still has restic's calibrated key, half a second
    of scrypt at every restic start: swapped here for a cheap one, once. The
    check costs one GET of the only key file (the backup listed keys/ with its
    snapshots); the swap derives the old key once, and restic itself must open
    the repository with the new one, else the old one is put back. Any failure
    leaves the calibrated key in place and is no failure of the backup."""
    try:
        if restic_key.calibrated_key(restic_key.Bucket(repository), keys) is None:
            return
        with repository_lock(repository):
            info(restic_key.make_cheap(repository, lambda: _opens(repository)))
    except Exception as exc:  # noqa: BLE001 - best effort: restic's own key stays
        info(f"the repository keeps its calibrated key: {exc}")


def backup(params: dict, seen: dict | None = None) -> dict:
    """The backup itself (also env_restore.py's pre-restore backup, beside its
    reads: no key swap there). ``seen`` receives what the backup learnt of
    the repository: ``created`` (made by this run), ``keys`` (its keys/ names)."""
    seen = {} if seen is None else seen
    name = params["system_name"]
    if not env_setup.NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    scope = params["scope"]
    if scope not in SCOPES:
        raise NodeError("bad_parameters", f"unknown backup scope {scope!r}")
    root = params["root"]
    repository = params["repository"]
    previous = params.get("previous_files") or {}
    tags = [f"backup:{params['backup_id']}", f"environment:{params['environment_id']}"]
    if not os.path.exists(RESTIC):
        raise NodeError("remote_step_failed", "restic is not installed on this node; provision it again")

    # A repository the site's earlier backups used is opened by the backup
    # itself (one start of restic less); if that fails (gone, or a stale
    # exclusive lock), the check below runs and the backup is tried once more.
    known = bool(params.get("repository_known"))
    if not known:
        step("backup repository")
        if ensure_repository(repository):
            seen["created"] = True
            info("created the site's backup repository")

    result: dict = {"parts": {}}
    parts = SCOPES[scope]
    if "files" in parts:
        step("check the environment's layout")
        # As root, before the site's user reads anything: current must be the node's own link.
        release = safe_fs.current_release(Path(root))
        if release is None:
            raise NodeError("remote_step_failed", f"the environment has no current release at {root}")
        result["release"] = release
    reused = None
    if "files" in parts:
        fingerprint = files_fingerprint(name, root, result["release"])
        if fingerprint and previous.get("fingerprint") == fingerprint and previous.get("snapshot_id"):
            # Nothing changed since the environment's last backup: its files snapshot holds this very tar.
            reused = {key: previous[key] for key in ("snapshot_id", "sha256", "bytes")}
            reused.update(added_bytes=0, fingerprint=fingerprint, reused_from=previous.get("backup_id"))

    def database():
        services.ensure_running("mariadb")
        return stream_into_restic(repository, database_dump(name), filename="database.sql",
                                  tags=[*tags, "part:db"], host=name, what="mariadb-dump", resolve=False)

    def files():
        # GNU tar exits 1 when a file changed while it was read: the site is live, that is no failure.
        part = stream_into_restic(repository, files_archive(name, root, result["release"]), filename="files.tar",
                                  tags=[*tags, "part:files"], host=name, what="tar of the files",
                                  accept_exit=(0, 1), resolve=False)
        return {**part, "fingerprint": fingerprint}

    jobs = {}
    if "db" in parts:
        jobs["db"] = database
    if "files" in parts and reused is None:
        jobs["files"] = files
    step(" and ".join({"db": "database (mariadb-dump --single-transaction)",
                       "files": f"files (release {result.get('release')} and shared/, read as {name})"}[part]
                      for part in jobs) + " into restic" if jobs else "nothing changed since the last backup")
    try:
        result["parts"] = _parallel(jobs)
    except NodeError as exc:
        if not known or exc.code != "backup_storage_failed":
            raise
        info(f"the repository needs a look first: {exc.message}")
        step("backup repository")
        if ensure_repository(repository):
            seen["created"] = True
            info("created the site's backup repository")
        result["parts"] = _parallel(jobs)

    ids = _snapshot_ids(repository, seen)
    if reused is not None:
        if reused["snapshot_id"] in ids:
            info(f"files unchanged since backup {reused['reused_from']}: its snapshot "
                 f"{reused['snapshot_id'][:8]} holds them")
            result["parts"]["files"] = reused
        else:
            step(f"files (release {result['release']} and shared/, read as {name})")
            result["parts"]["files"] = files()
            ids = _snapshot_ids(repository, seen)
    for part_name, part in result["parts"].items():
        full = part["snapshot_id"] if part["snapshot_id"] in ids else _full_id(ids, part["snapshot_id"])
        if full is None:
            raise NodeError("backup_storage_failed",
                            f"restic does not list the snapshot it just made ({part['snapshot_id']!r})",
                            retryable=True)
        part["snapshot_id"] = full
    return result


if __name__ == "__main__":
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, stop_cleanly)
    main(backup_and_key)
