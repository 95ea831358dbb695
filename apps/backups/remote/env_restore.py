#!/usr/bin/env python3
"""env_restore: put a backup back into an environment. One run does the
restore up to the verdict (``restore``); the panel then runs the health
check, and after it ``revert`` (unhealthy) or ``cleanup``.

Parameters (JSON on stdin), all produced by the panel:
  phase         "restore", "revert" or "cleanup"
  system_name   the environment's Linux user (and database name)
  root, url     the environment's directory and URL
  work          the job's key: names the node's scratch directory for this restore
  redis         {"key_prefix"}
  restore: repository (the site's restic repository, as backup_create.py),
          parts {"db"|"files": {"snapshot_id", "sha256", "bytes"}} as the Backup
          recorded them, release (the new release's name), db_password,
          pre_restore (optional: backup_create.py's parameters of the
          pre-restore backup), rewrite {"from_url", "from_system_name"} when
          the backup came from another environment, wp_options (optional)
  revert: previous_release (or null), release, db_password
  cleanup: keep_release (optional).

- restore, first everything beside the live site, at once: each part read
  back with ``restic restore`` into a scratch directory only root can enter,
  then read once more, and that one read both checks it and uses it: the
  files archive hashed in one thread while it is checked (rules below) and
  its release built (by root into a directory only root can write: files
  with O_NOFOLLOW|O_EXCL, links last, owners and modes from the archive
  ignored, then sealed like every release) and its uploads unpacked by the
  site's own user into a fresh directory beside the live one; the dump
  hashed as it is loaded by the site's own database account into a fresh
  database (URLs rewritten there once its digest is the backup's). Beside
  both, the pre-restore backup (it only reads the live site). A SHA-256 or
  length that is not what the backup recorded (``backup_checksum_mismatch``,
  reported before any other failure), an archive refused
  (``backup_archive_invalid``), an earlier restore's state still aside, or a
  failed pre-restore backup: what was built beside is removed, the
  pre-restore backup forgotten again, and the result says ``refused`` (or
  ``pre_restore_error``): the live site was not touched. Then the swaps:
  tables renamed in one statement (the previous ones into
  ``<name>_prerestore``; live's views kept in the work directory, dropped,
  and the restored ones created again in live by the site's account),
  uploads directories renamed, ``current`` switched;
  PHP-FPM reloaded, caches purged. Nothing is dropped before the swap. A
  swap that fails: ``failed`` in the result, the panel reverts.
- revert: the swaps undone: the previous tables, views, uploads and release back.
- cleanup: what the restore left aside (scratch database and directories, the
  previous tables and uploads) removed.

Archive checks (apps/environments/remote/release_archive.py's rules): every
name relative without ``..``, no name twice, nothing inside a link or a file;
in the release, only files, directories and links that stay inside it;
in the uploads (the site's own files), links are kept as links (the site's
user makes them, they reach nothing it could not reach), hard links and
special files are left out and named. ``shared/wp-config.php`` is never
taken from a backup: the panel writes it for the environment.
"""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import backup_create
import env_clone
import env_setup
import page_cache
import redis_acl
import release_archive
import release_files
import php_opcache
import safe_fs
import services
import wp_helper_client
from env_setup import link_current
from nodelib import NodeError, info, main, run, step

WORK_ROOT = Path("/var/lib/pressluft/restore")
WORK_NAME = re.compile(r"^[0-9a-f]{32}$")
SNAPSHOT = re.compile(r"^[0-9a-f]{64}$")
FILENAMES = {"db": "database.sql", "files": "files.tar"}
UPLOADS_NEW = ".uploads-restoring"
UPLOADS_OLD = ".uploads-previous"
CHUNK = 1024 * 1024
SHOWN_PROBLEMS = 5
KEEP_RELEASES = 5
SQL_MODE = re.compile(r"^[A-Z0-9_,]*$")
DUMP_DELIMITERS = (b"DELIMITER ;;", b"DELIMITER ;")
SITE_SQL = Path(__file__).resolve().parent / "pressluft-site-sql.php"
VIEWS_KEPT = "views.json"  # live's views before the swap, in the work directory: revert creates them again


def work_dir(params: dict) -> Path:
    if not WORK_NAME.match(params.get("work") or ""):
        raise NodeError("bad_parameters", "unexpected work directory name")
    return WORK_ROOT / params["work"]


def check_parts(parts: dict) -> dict:
    if not parts or set(parts) - set(FILENAMES):
        raise NodeError("bad_parameters", "unexpected backup parts")
    for part in parts.values():
        if not SNAPSHOT.match(part.get("snapshot_id") or "") or not re.fullmatch(r"[0-9a-f]{64}", part.get("sha256") or ""):
            raise NodeError("bad_parameters", "unexpected snapshot id or checksum")
    return parts


def _shown(problems: list[str]) -> str:
    return "; ".join(problems[:SHOWN_PROBLEMS]) + (
        f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else "")


# --- restore: read back, checked in the read that uses it, then swapped ----------------------------

def read_part(repository: dict, name: str, part: dict, into: Path) -> None:
    """One part read back into ``into`` (root's, in the root-only work
    directory) with ``restic restore`` (it fetches the packs in parallel,
    where ``restic dump`` reads blob after blob). Not checked yet: its one
    read that follows checks it (see prepare)."""
    target = into.parent / f".{name}-restoring"
    command = [backup_create.RESTIC, *backup_create.restic_options(repository), *backup_create.READ_ONLY,
               "restore", part["snapshot_id"], "--target", str(target), "--include", f"/{FILENAMES[name]}"]
    process = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                             env=backup_create.restic_env(repository), cwd="/")
    if process.returncode != 0:
        detail = backup_create._tail(process.stderr)
        if "no matching ID found" in detail:
            raise NodeError("backup_checksum_mismatch",
                            f"the {name} snapshot {part['snapshot_id'][:8]} is not in the repository: {detail}")
        raise NodeError("backup_storage_failed", f"restic could not read the {name} snapshot: {detail}", retryable=True)
    try:
        os.rename(target / FILENAMES[name], into)
    except FileNotFoundError:
        raise NodeError("backup_checksum_mismatch", f"the {name} snapshot {part['snapshot_id'][:8]} holds no "
                        f"{FILENAMES[name]}; nothing was changed") from None
    finally:
        shutil.rmtree(target, ignore_errors=True)


def check_digest(name: str, part: dict, digest: str, size: int) -> None:
    """The SHA-256 and length of a part as read must be what the backup recorded."""
    if size != int(part["bytes"]) or digest != part["sha256"]:
        raise NodeError("backup_checksum_mismatch",
                        f"the {name} part read back ({size} bytes, sha256 {digest[:16]}…) is not what the "
                        f"backup recorded ({part['bytes']} bytes, sha256 {part['sha256'][:16]}…); nothing was changed")
    info(f"{FILENAMES[name]}: {size} bytes, sha256 matches the backup")


def _identity(info_: os.stat_result) -> list[int]:
    """Which file, in which state: inode, size, mtime and ctime (no one can set a ctime back)."""
    return [info_.st_dev, info_.st_ino, info_.st_size, info_.st_mtime_ns, info_.st_ctime_ns]


def _hash_file(path: Path) -> tuple[str, int, list[int]]:
    """SHA-256, length and identity of a regular file, opened without following
    a link; a file that changed while it was read is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise NodeError("backup_checksum_mismatch", f"{path.name} is not a regular file ({exc.strerror})") from None
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as stream:
        before = os.fstat(stream.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise NodeError("backup_checksum_mismatch", f"{path.name} is not a regular file")
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if _identity(os.fstat(stream.fileno())) != _identity(before):
            raise NodeError("backup_checksum_mismatch", f"{path.name} changed while it was checked")
    return digest.hexdigest(), size, _identity(before)


class FilesArchive:
    """The members of a backup's files archive, checked and sorted into the
    release's and the uploads' (names relative to each)."""

    def __init__(self, path: Path):
        self.release_name = None
        self.release: list[tuple[str, tarfile.TarInfo]] = []
        self.uploads: list[tuple[str, tarfile.TarInfo]] = []
        self.left_out: list[str] = []
        problems: list[str] = []
        seen: set[str] = set()
        try:
            with tarfile.open(path, "r:") as archive:
                members = archive.getmembers()
        except (tarfile.TarError, EOFError, ValueError) as exc:
            raise NodeError("backup_archive_invalid", f"the files archive cannot be read: {exc}") from None
        for member in members:
            name, problem = release_archive.clean_name(member.name)
            if problem:
                problems.append(problem)
                continue
            if not name:
                continue
            if name in seen:
                problems.append(f"{member.name!r}: appears twice")
                continue
            seen.add(name)
            parts = name.split("/")
            if name == "releases" and member.isdir():
                continue
            if parts[0] == "releases" and len(parts) >= 2:
                if not safe_fs.RELEASE_NAME.match(parts[1]) or (self.release_name not in (None, parts[1])):
                    problems.append(f"{member.name!r}: not in the one release of the backup")
                    continue
                self.release_name = parts[1]
                if len(parts) > 2:
                    self.release.append(("/".join(parts[2:]), member))
                elif not member.isdir():
                    problems.append(f"{member.name!r}: the release is not a directory")
            elif name in ("shared", "shared/wp-config.php") and (member.isdir() or member.isfile()):
                continue  # wp-config.php is the panel's to write
            elif parts[:2] == ["shared", "uploads"]:
                if len(parts) > 2:
                    self.uploads.append(("/".join(parts[2:]), member))
                elif not member.isdir():
                    problems.append(f"{member.name!r}: the uploads are not a directory")
            else:
                problems.append(f"{member.name!r}: neither the release nor shared/ of an environment")
        if self.release_name is None:
            problems.append("the archive holds no release")
        problems += self._check_release()
        problems += self._check_uploads()
        if problems:
            raise NodeError("backup_archive_invalid", f"the files archive was refused: {_shown(problems)}")

    def _check_release(self) -> list[str]:
        problems, kept = [], []
        for name, member in self.release:
            if name in release_files.SHARED_LINKS:
                continue  # made again for this environment (attach_pressluft_parts)
            if member.isdir():
                kind = "dir"
            elif member.issym():
                kind = "symlink"
            elif member.isfile():
                kind = "file"
            else:
                problems.append(f"release {name!r}: hard links and special files are not release code")
                continue
            kept.append((name, member, kind))
        self.release = [(name, member) for name, member, _ in kept]
        members = [release_archive.Member(name, kind, member.size, bool(member.mode & 0o111),
                                          member.linkname if kind == "symlink" else "")
                   for name, member, kind in kept]
        return problems + [f"release {problem}" for problem in release_archive.structure_problems(members, "the release")]

    def _check_uploads(self) -> list[str]:
        kinds = {}
        kept = []
        for name, member in self.uploads:
            if member.isdir():
                kinds[name] = "dir"
            elif member.issym():
                kinds[name] = "symlink"
            elif member.isfile():
                kinds[name] = "file"
            else:
                self.left_out.append(name)
                continue
            kept.append((name, member))
        problems = []
        for name, member in kept:
            parts = name.split("/")
            for depth in range(1, len(parts)):
                if kinds.get("/".join(parts[:depth])) in ("symlink", "file"):
                    problems.append(f"uploads {name!r}: lies inside the {kinds['/'.join(parts[:depth])]} "
                                    f"{'/'.join(parts[:depth])!r}")
                    break
        self.uploads = kept
        return problems


def left_aside(name: str, root: Path) -> None:
    """Refuse to start while an earlier restore's previous state is still kept
    aside (it stopped half-way, or could not put it back): that state may be
    the only copy of the site as it was, and an operator must look first."""
    found = []
    services.ensure_running("mariadb")
    aside = database_names(name)[1]
    if tables_of(aside):
        found.append(f"the database {aside}")
    if os.path.lexists(root / "shared" / UPLOADS_OLD):
        found.append(f"{root}/shared/{UPLOADS_OLD}")
    if found:
        raise NodeError("remote_step_failed", f"an earlier restore left the previous state aside ({', '.join(found)}); "
                        "look at it, then drop it, before restoring again")


def _settle(jobs: dict) -> tuple[dict, dict]:
    """Run the named callables at once; (results, errors) by name once all ended."""
    results, errors = {}, {}

    def run(name, job):
        try:
            results[name] = job()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            errors[name] = exc

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def _forget_pre_restore(repository: dict, made: dict | None) -> None:
    """The snapshots a pre-restore backup stored (not a reused earlier one), forgotten again."""
    ids = [part["snapshot_id"] for part in ((made or {}).get("parts") or {}).values()
           if part.get("snapshot_id") and not part.get("reused_from")]
    if ids:
        forgotten = backup_create.restic(repository, ["forget", *ids])
        info("the pre-restore backup's snapshots are forgotten again" if forgotten.returncode == 0 else
             f"the pre-restore backup's snapshots could not be forgotten: {backup_create._tail(forgotten.stderr)}")


def prepare_files(repository: dict, part: dict, work: Path, root: Path, release: str,
                  account: safe_fs.Account) -> dict:
    """The files part read back, then read once more with its check beside
    the unpacking: the SHA-256 of the archive (one thread) while the archive
    is checked and the release built and the uploads unpacked beside the live
    site (others). A digest that is not the backup's wins over any other
    failure; what was built is then removed by the caller (``discard``)."""
    path = work / FILENAMES["files"]
    read_part(repository, "files", part, path)

    def build() -> dict:
        step("check the files archive")
        archive = FilesArchive(path)
        info(f"release {archive.release_name}: {len(archive.release)} entries; uploads: {len(archive.uploads)} entries")
        step(f"build release {release} from the backup's release {archive.release_name}, "
             f"and unpack the uploads as {account.name} beside it")
        _, failed = _settle({"release": lambda: build_release(root, release, archive, path, account),
                             "uploads": lambda: unpack_uploads(root, archive, path, account)})
        if failed:
            raise failed.get("release") or failed["uploads"]
        if archive.left_out:
            info(f"left out of the uploads (hard links, special files): {_shown(archive.left_out)}")
        return {"left_out": len(archive.left_out)}

    results, errors = _settle({"digest": lambda: _hash_file(path), "build": build})
    if "digest" in errors:
        raise errors["digest"]
    digest, size, _ = results["digest"]
    check_digest("files", part, digest, size)
    if "build" in errors:
        raise errors["build"]
    return results["build"]


def prepare_db(repository: dict, part: dict, work: Path, params: dict) -> dict:
    """The database part read back, then loaded into a fresh database beside
    the live one in the same read that hashes it; URLs rewritten there (when
    the backup came from another environment) once the digest is the
    backup's. A digest that is not the backup's wins over a failed load."""
    name = params["system_name"]
    incoming = database_names(name)[0]
    path = work / FILENAMES["db"]
    read_part(repository, "db", part, path)
    services.ensure_running("mariadb")
    step(f"load the database into a fresh database ({incoming})")
    prepare_database(name, params["db_password"], incoming)
    rewrite = params.get("rewrite") or {}
    digest, size, failure = load_database(path, name, params["db_password"], incoming,
                                          rewrite.get("from_system_name") or name)
    check_digest("db", part, digest, size)
    if failure is not None:
        raise failure
    result = {}
    if rewrite.get("from_url") and rewrite["from_url"] != params["url"]:
        step(f"rewrite {rewrite['from_url']} to {params['url']}")
        result["url_rewrite"] = env_clone.rewrite_urls(name, params["db_password"], rewrite["from_url"],
                                                       params["url"], database=incoming)
    return result


def discard(root: Path, name: str, release: str | None, parts: dict) -> None:
    """What prepare built beside the live site, removed (the live site was not touched)."""
    if "files" in parts and release:
        for path in (root / "releases" / f".{release}.partial", root / "releases" / release):
            if os.path.lexists(path) and safe_fs.current_release(root) != release:
                release_files.remove(path)
        _remove_site_tree(root / "shared", UPLOADS_NEW, name)
    if "db" in parts:
        incoming = database_names(name)[0]
        _sql(f"DROP DATABASE IF EXISTS `{incoming}`;\n")
        run(["mariadb", "--batch"], input=f"REVOKE ALL PRIVILEGES ON `{_grant_name(incoming)}`.* "
                                          f"FROM '{name}'@'localhost';", check=False, cwd="/")


def _as_error(exc: BaseException) -> dict:
    if isinstance(exc, NodeError):
        return {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return {"code": "remote_step_failed", "message": f"{exc.strerror or exc}{where}", "retryable": False}
    if isinstance(exc, subprocess.CalledProcessError):
        tail = (exc.stderr or exc.output or "")
        tail = tail.decode("utf-8", "replace") if isinstance(tail, bytes) else tail
        return {"code": "remote_step_failed", "retryable": False,
                "message": f"{exc.cmd[0]} exited {exc.returncode}: {' | '.join(tail.strip().splitlines()[-3:])}"}
    return {"code": "remote_step_failed", "message": f"{type(exc).__name__}: {exc}", "retryable": False}


def build_release(root: Path, release: str, archive: FilesArchive, path: Path, account: safe_fs.Account) -> Path:
    """releases/<release> from the archive's release: written by root into a
    directory nobody else can write, never through a link."""
    final = root / "releases" / release
    if final.exists() or final.is_symlink():
        raise NodeError("bad_parameters", f"release {release} exists already")
    partial = root / "releases" / f".{release}.partial"
    release_files.remove(partial)
    partial.mkdir(mode=0o755)
    top = safe_fs.open_directory(partial)
    try:
        with tarfile.open(path, "r:") as tar:
            ordered = sorted(archive.release, key=lambda item: item[0].count("/"))
            for name, member in ordered:
                if member.issym():
                    continue
                *parents, leaf = name.split("/")
                parent = _walk(top, parents)
                try:
                    if member.isdir():
                        try:
                            os.mkdir(leaf, 0o755, dir_fd=parent)
                        except FileExistsError:
                            os.close(safe_fs.open_directory(leaf, dir_fd=parent, shown=name))
                        continue
                    fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o755 if member.mode & 0o111 else 0o644, dir_fd=parent)
                    with os.fdopen(fd, "wb") as out, tar.extractfile(member) as source:
                        while chunk := source.read(CHUNK):
                            out.write(chunk)
                finally:
                    if parent != top:
                        os.close(parent)
            for name, member in archive.release:
                if not member.issym():
                    continue
                *parents, leaf = name.split("/")
                parent = _walk(top, parents, create=True)
                try:
                    os.symlink(member.linkname, leaf, dir_fd=parent)
                finally:
                    if parent != top:
                        os.close(parent)
    finally:
        os.close(top)
    release_files.attach_pressluft_parts(partial)
    release_files.replace_file(partial / ".pressluft-complete", (release + "\n").encode())
    release_files.seal(partial, (account.uid, account.gid))
    partial.rename(final)
    return final


def _walk(top: int, parents: list[str], create: bool = True) -> int:
    """The directory ``parents`` below ``top``, each step opened without following a link."""
    fd = top
    for index, part in enumerate(parents):
        if create:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
        following = safe_fs.open_directory(part, dir_fd=fd, shown="/".join(parents[: index + 1]))
        if fd != top:
            os.close(fd)
        fd = following
    return fd


def _remove_site_tree(shared: Path, entry: str, name: str) -> None:
    """A site-owned directory in shared/ (root's): emptied by the site's user, then removed by root."""
    path = shared / entry
    try:
        info_ = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info_.st_mode):
        run(["runuser", "-u", name, "--", "find", str(path), "-mindepth", "1", "-delete"], cwd="/", check=False)
        os.rmdir(path)
    else:
        os.unlink(path)


def unpack_uploads(root: Path, archive: FilesArchive, path: Path, account: safe_fs.Account) -> None:
    """shared/.uploads-restoring: the archive's uploads, unpacked by the site's user
    from a stream of only the checked entries (owners and odd modes dropped)."""
    shared = root / "shared"
    _remove_site_tree(shared, UPLOADS_NEW, account.name)
    shared_fd = safe_fs.open_directory(shared)
    try:
        os.close(safe_fs.ensure_directory(shared_fd, UPLOADS_NEW, account.uid, account.web_gid, 0o750,
                                          f"{shared}/{UPLOADS_NEW}"))
    finally:
        os.close(shared_fd)
    unpack = subprocess.Popen(
        ["runuser", "-u", account.name, "--", "tar", "--extract", "--file=-", "--directory", str(shared / UPLOADS_NEW),
         "--no-same-owner", "--no-same-permissions", "--no-overwrite-dir"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={"PATH": backup_create.PATH},
        cwd="/",
    )
    errors: list = []
    reader = threading.Thread(target=backup_create._drain, args=(unpack.stderr, errors, 64 * 1024), daemon=True)
    reader.start()
    try:
        with tarfile.open(path, "r:") as source, tarfile.open(fileobj=unpack.stdin, mode="w|",
                                                              format=tarfile.PAX_FORMAT) as out:
            for name, member in archive.uploads:
                clean = tarfile.TarInfo(name)
                clean.mtime = member.mtime
                clean.uid = clean.gid = 0
                clean.uname = clean.gname = ""
                if member.isdir():
                    clean.type, clean.mode = tarfile.DIRTYPE, 0o750
                    out.addfile(clean)
                elif member.issym():
                    clean.type, clean.linkname, clean.mode = tarfile.SYMTYPE, member.linkname, 0o777
                    out.addfile(clean)
                else:
                    clean.type, clean.size = tarfile.REGTYPE, member.size
                    clean.mode = 0o750 if member.mode & 0o100 else 0o640
                    with source.extractfile(member) as data:
                        out.addfile(clean, data)
    except BrokenPipeError:
        pass
    finally:
        try:
            unpack.stdin.close()
        except BrokenPipeError:
            pass
        unpack.wait()
        reader.join(timeout=10)
    if unpack.returncode != 0:
        raise NodeError("remote_step_failed", f"unpacking the uploads as {account.name} exited {unpack.returncode}: "
                        + backup_create._tail(b"".join(errors)))


def swap_uploads(root: Path, forward: bool) -> bool:
    """Forward: uploads -> .uploads-previous, .uploads-restoring -> uploads.
    Back: uploads -> .uploads-restoring, .uploads-previous -> uploads. Renames
    inside root's shared/, where the site cannot change an entry."""
    shared = safe_fs.open_directory(root / "shared")
    try:
        if forward:
            aside, incoming = UPLOADS_OLD, UPLOADS_NEW
        else:
            aside, incoming = UPLOADS_NEW, UPLOADS_OLD
        try:
            if not stat.S_ISDIR(os.stat(incoming, dir_fd=shared, follow_symlinks=False).st_mode):
                return False
        except FileNotFoundError:
            return False
        try:
            os.stat(aside, dir_fd=shared, follow_symlinks=False)
            raise NodeError("remote_step_failed", f"shared/{aside} is in the way")
        except FileNotFoundError:
            pass
        try:
            os.rename("uploads", aside, src_dir_fd=shared, dst_dir_fd=shared)
        except FileNotFoundError:
            if forward:
                raise
        os.rename(incoming, "uploads", src_dir_fd=shared, dst_dir_fd=shared)
        return True
    finally:
        os.close(shared)


# The database: fresh one beside, swapped in by renaming tables.

def database_names(name: str) -> tuple[str, str]:
    return f"{name}_restore", f"{name}_prerestore"


def _sql(statements: str) -> str:
    return run(["mariadb", "--batch", "--skip-column-names"], input=statements, cwd="/").stdout


def _grant_name(database: str) -> str:
    return database.replace("_", "\\_")


def tables_of(database: str) -> list[tuple[str, str]]:
    """(name, type) of each table in ``database``. Names are the site's and may
    hold any character (back-quotes, line breaks, backslashes) that --batch
    output would escape: they are read in hex and used only back-quoted."""
    out = _sql("SELECT HEX(TABLE_NAME), TABLE_TYPE FROM information_schema.TABLES "
               f"WHERE TABLE_SCHEMA = '{database}' ORDER BY TABLE_NAME;")
    found = []
    for line in out.splitlines():
        table, kind = line.split("\t")
        found.append((bytes.fromhex(table).decode("utf-8", "surrogateescape"), kind))
    return found


def prepare_database(name: str, password: str, database: str) -> None:
    env_setup.sql_quote(password)
    create_scratch_database(name, database)


def client_unsafe(line: bytes) -> bool:
    """A line the mariadb client would not pass on as it is. A line that starts
    with "delimiter" is the client's DELIMITER command to it; the dump's own
    are exactly ``DELIMITER ;;`` and ``DELIMITER ;``. Any other comes from the
    site's text (a name or a trigger, routine or view body that holds a line
    break followed by "delimiter"), and the client drops the line break at
    its end: the body would change (a comment at that line's end would
    swallow the next line)."""
    return line[:9].lower() == b"delimiter" and line.rstrip(b"\r\n") not in DUMP_DELIMITERS


def load_database(dump: Path, name: str, password: str, database: str,
                  from_name: str) -> tuple[str, int, NodeError | None]:
    """The dump into ``database``, by the site's user with its own database
    account (binary mode, no client commands): the dump holds the site's
    data. Definers of another environment of the site become this one's. A
    line the client would change (``client_unsafe``) stops the load: it goes
    no further than the scratch database, and the caller refuses. The same
    read hashes the dump (to its end, even when the load stopped): the
    caller compares the digest before anything else. Returns (SHA-256,
    length, the load's failure or None)."""
    try:
        fd = os.open(dump, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise NodeError("backup_checksum_mismatch", f"{dump.name} is not a regular file ({exc.strerror})") from None
    load = subprocess.Popen(
        ["runuser", "-u", name, "--", "mariadb", "--no-defaults", "--batch", "--binary-mode", "--sandbox", "--comments",
         "--default-character-set=utf8mb4", f"--user={name}", "--host=localhost", database],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={"PATH": backup_create.PATH, "LANG": "C.UTF-8", "MYSQL_PWD": password}, cwd="/",
    )
    errors: list = []
    reader = threading.Thread(target=backup_create._drain, args=(load.stderr, errors, 64 * 1024), daemon=True)
    reader.start()
    source_definer = f"DEFINER=`{from_name}`@`localhost`".encode()
    target_definer = f"DEFINER=`{name}`@`localhost`".encode()
    digest, size, loading, number, refused = hashlib.sha256(), 0, True, 0, None
    try:
        with os.fdopen(fd, "rb") as stream:
            before = os.fstat(stream.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise NodeError("backup_checksum_mismatch", f"{dump.name} is not a regular file")
            for line in stream:
                digest.update(line)
                size += len(line)
                number += 1
                if not loading:
                    continue
                if client_unsafe(line):
                    loading = False
                    load.kill()
                    refused = NodeError("remote_step_failed", f"line {number} of the database dump starts with "
                                        "\"delimiter\" inside the site's own text (a name or a trigger, routine or "
                                        "view body): the mariadb client would change it, so it is not loaded")
                    continue
                if from_name != name and b"DEFINER=" in line:
                    line = line.replace(source_definer, target_definer)
                try:
                    load.stdin.write(line)
                except BrokenPipeError:
                    loading = False
            if _identity(os.fstat(stream.fileno())) != _identity(before):
                raise NodeError("backup_checksum_mismatch", f"{dump.name} changed while it was checked")
    finally:
        try:
            load.stdin.close()
        except BrokenPipeError:
            pass
        load.wait()
        reader.join(timeout=10)
    failure = refused
    if failure is None and load.returncode != 0:
        failure = NodeError("remote_step_failed", f"loading the database into {database} exited {load.returncode}: "
                            + backup_create._tail(b"".join(errors)))
    return digest.hexdigest(), size, failure


class Trigger:
    """A trigger as the server keeps it (information_schema, read in hex: names
    and bodies are the site's and may hold any character)."""

    def __init__(self, database: str, row: list[str]):
        self.database = database
        self.name = bytes.fromhex(row[0]).decode("utf-8", "surrogateescape")
        self.table = bytes.fromhex(row[1]).decode("utf-8", "surrogateescape")
        self.timing, self.event, self.sql_mode = row[2], row[3], row[5] if len(row) > 5 else ""
        self.body = bytes.fromhex(row[4]).decode("utf-8", "surrogateescape")
        if self.timing not in ("BEFORE", "AFTER") or self.event not in ("INSERT", "UPDATE", "DELETE") \
                or not SQL_MODE.match(self.sql_mode):
            raise NodeError("remote_step_failed", f"unexpected trigger definition in {database}")

    def statements(self) -> list[str]:
        return [f"SET SESSION sql_mode = '{self.sql_mode}'",
                f"CREATE TRIGGER {quote_name(self.name)} {self.timing} {self.event} ON {quote_name(self.table)} "
                f"FOR EACH ROW {self.body}"]

    def shape(self) -> tuple:
        return self.name, self.table, self.timing, self.event, self.body, self.sql_mode


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def triggers_of(database: str) -> list[Trigger]:
    out = _sql("SELECT HEX(TRIGGER_NAME), HEX(EVENT_OBJECT_TABLE), ACTION_TIMING, EVENT_MANIPULATION, "
               f"HEX(ACTION_STATEMENT), SQL_MODE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{database}' "
               "ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER;")
    return [Trigger(database, line.split("\t")) for line in out.splitlines() if line]


def site_sql(name: str, password: str, database: str, statements: list[str] | None = None,
             groups: list[list[str]] | None = None) -> dict:
    """Statements run by the site's own database account, each sent to the
    server as it is, one at a time (pressluft-site-sql.php): no client
    reads them as a script. ``groups``: each tried again after the others
    until a round gets no further. The script's answer; rows in hex."""
    def hexed(texts: list[str]) -> list[str]:
        return [text.encode("utf-8", "surrogateescape").hex() for text in texts]

    request = {"db": {"name": database, "user": name, "password": password}}
    if groups is not None:
        request["groups"] = [hexed(group) for group in groups]
    else:
        request["statements"] = hexed(statements or [])
    done = subprocess.run(["runuser", "-u", name, "--", "php", str(SITE_SQL)], input=json.dumps(request).encode(),
                          capture_output=True, cwd="/", env={"PATH": backup_create.PATH, "LANG": "C.UTF-8"}, timeout=600)
    try:
        answer = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = {"ok": False, "error": backup_create._tail(done.stderr or done.stdout)}
    if done.returncode != 0:
        answer["ok"] = False
    return answer


def create_triggers(name: str, password: str, database: str, triggers: list[Trigger]) -> None:
    """The triggers in ``database``, created by the site's own database account:
    their bodies are the site's SQL, so they are parsed with its rights only.
    Each statement goes to the server as it is, one at a time
    (pressluft-site-sql.php): no client reads the bodies as a script.
    Read back afterwards, each must be the trigger it was, byte for byte."""
    answer = site_sql(name, password, database, [text for trigger in triggers for text in trigger.statements()])
    if not answer.get("ok"):
        raise NodeError("remote_step_failed", f"creating the triggers in {database} failed: {answer.get('error')}")
    created = {trigger.name: trigger for trigger in triggers_of(database)}
    for trigger in triggers:
        if created.get(trigger.name) is None or created[trigger.name].shape() != trigger.shape():
            raise NodeError("remote_step_failed", f"a trigger created again in {database} differs from the original")


VIEW_HEAD = re.compile(r"CREATE ALGORITHM=(UNDEFINED|MERGE|TEMPTABLE) DEFINER=(`(?:[^`]|``)*`@`(?:[^`]|``)*`) "
                       r"SQL SECURITY (DEFINER|INVOKER) VIEW ")
COLLATION = re.compile(r"^[a-z0-9_]{1,64}$")


class View:
    """A view as ``SHOW CREATE VIEW`` gives it (read by the site's account, in
    hex: names and bodies are the site's and may hold any character). The
    body names the tables of its own database without the database, so it
    can be created in another one. Created again, it is always the site's:
    DEFINER the site's own account, whoever the definition named."""

    def __init__(self, name: str, create: str, collation: str, broken: bool = False):
        self.broken = broken  # its tables, columns or functions were gone when it was read
        head = VIEW_HEAD.match(create)
        quoted = quote_name(name) + " AS "
        if head is None or not create.startswith(quoted, head.end()) or not COLLATION.match(collation):
            raise NodeError("remote_step_failed", "unexpected view definition")
        self.name, self.create, self.collation = name, create, collation
        self.algorithm, self.definer, self.security = head[1], head[2], head[3]
        self.body = create[head.end() + len(quoted):]

    def statements(self, account: str) -> list[str]:
        return [f"SET SESSION collation_connection = '{self.collation}'",
                f"CREATE ALGORITHM={self.algorithm} DEFINER={quote_name(account)}@`localhost` "
                f"SQL SECURITY {self.security} VIEW {quote_name(self.name)} AS {self.body}"]

    def shape(self) -> tuple:
        return self.name, self.algorithm, self.security, self.body, self.collation

    def saved(self) -> dict:
        return {"name": _hex(self.name), "create": _hex(self.create), "collation": self.collation,
                "broken": self.broken}

    @classmethod
    def from_saved(cls, saved: dict) -> "View":
        return cls(_text(saved["name"]), _text(saved["create"]), saved["collation"], saved.get("broken") is True)


def _hex(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").hex()


def _text(hex_value: str) -> str:
    return bytes.fromhex(hex_value).decode("utf-8", "surrogateescape")


def views_of(name: str, password: str, database: str, broken_ok: bool = False) -> list[View]:
    """The views of ``database`` (its names read by root in hex, each
    definition by the site's account with SHOW CREATE VIEW). A view whose
    tables, columns or functions are gone (SHOW CREATE VIEW warns) cannot be
    created as it is: refused, or with ``broken_ok`` marked ``broken``."""
    names = [table for table, kind in tables_of(database) if kind == "VIEW"]
    if not names:
        return []
    answer = site_sql(name, password, database,
                      [text for view in names for text in (f"SHOW CREATE VIEW {quote_name(database)}.{quote_name(view)}",
                                                            "SHOW WARNINGS")])
    if not answer.get("ok"):
        raise NodeError("remote_step_failed", f"reading the views of {database} failed: {answer.get('error')}")
    views = []
    found = answer.get("rows") or []
    for view, rows, warnings in zip(names, found[0::2], found[1::2], strict=True):
        try:
            if not rows or len(rows[0]) != 4 or _text(rows[0][0]) != view or (warnings and not broken_ok):
                # A warning: its tables, columns or functions are gone (error 1356), it could not be created.
                raise NodeError("remote_step_failed", "unexpected answer")
            views.append(View(view, _text(rows[0][1]), _text(rows[0][3]), broken=bool(warnings)))
        except NodeError:
            # (MariaDB gives a view whose tables or columns are gone in its stored form, its database named.)
            raise NodeError("remote_step_failed", f"the view {ascii(view)[:80]} of {database} cannot be created "
                                                  "again as it is (do its tables and columns still exist?); "
                                                  "nothing was changed") from None
    return views


def drop_views(name: str, password: str, database: str) -> None:
    """Every view of ``database`` dropped (by the site's account: the names are the site's)."""
    names = [table for table, kind in tables_of(database) if kind == "VIEW"]
    if names:
        answer = site_sql(name, password, database,
                          [f"DROP VIEW IF EXISTS {quote_name(database)}.{quote_name(view)}" for view in names])
        if not answer.get("ok"):
            raise NodeError("remote_step_failed", f"dropping the views of {database} failed: {answer.get('error')}")


def create_views(name: str, password: str, database: str, views: list[View]) -> None:
    """The views in ``database``, created by the site's own account with the
    site as their definer (SQL SECURITY as it was): their bodies are the
    site's SQL, parsed and run with its rights only, each statement sent as
    it is (no client reads them as a script). A view that reads another is
    tried again after it. Read back, each must be the view it was, byte for
    byte. All or none: a failure drops what was created and raises. A view
    that was ``broken`` when read (its tables or columns gone) is created
    only if it can be: it was no working view before either."""
    if not views:
        return
    answer = site_sql(name, password, database, groups=[view.statements(name) for view in views])
    failed = {views[index].name for index in answer.get("failed") or [] if isinstance(index, int)
              and 0 <= index < len(views)}
    problem = None
    if not answer.get("ok") and (not failed or any(not view.broken for view in views if view.name in failed)):
        problem = f"creating the views in {database} failed: {answer.get('error')}"
    if problem is None:
        for view in views:
            if view.name in failed:
                info(f"view {ascii(view.name)[:80]} was broken already (its tables or columns gone): not created again")
        created = {view.name: view for view in views_of(name, password, database, broken_ok=True)}
        definer = f"{quote_name(name)}@`localhost`"
        for view in views:
            if view.name in failed:
                continue
            made = created.get(view.name)
            if made is None or made.shape() != view.shape() or made.definer != definer:
                problem = f"a view created again in {database} differs from the original"
                break
    if problem is not None:
        drop_views(name, password, database)
        raise NodeError("remote_step_failed", problem)


def save_views(path: Path, views: list[View]) -> None:
    """Live's views, kept for the way back in the root-only work directory
    (written whole before any is dropped; the site cannot reach it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump([view.saved() for view in views], out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def saved_views(path: Path) -> list[View] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as stream:
        return [View.from_saved(saved) for saved in json.load(stream)]


def move_tables(moves: list[tuple[str, str, str]], name: str, password: str) -> None:
    """Move tables ((from database, to database, table) each) in one RENAME
    TABLE: atomic for the tables. MariaDB cannot move a table with triggers to
    another database, so the moved tables' triggers are dropped first and
    created again beside their tables afterwards; for those few moments
    writes to those tables run without their triggers. When the RENAME
    fails, the triggers are created again where they were."""
    destination = {(source, table): target for source, target, table in moves}
    carried = [trigger for source in sorted({source for source, _, _ in moves}) for trigger in triggers_of(source)
               if (source, trigger.table) in destination]
    if carried:
        _sql("".join(f"DROP TRIGGER {quote_name(t.database)}.{quote_name(t.name)};\n" for t in carried))
    try:
        _sql("RENAME TABLE " + ",\n  ".join(f"{quote_name(source)}.{quote_name(table)} TO "
                                             f"{quote_name(target)}.{quote_name(table)}"
                                             for source, target, table in moves) + ";\n")
    except (NodeError, subprocess.CalledProcessError):
        for database, triggers in _by_database(carried, lambda trigger: trigger.database):
            create_triggers(name, password, database, triggers)
        raise
    for database, triggers in _by_database(carried, lambda t: destination[(t.database, t.table)]):
        create_triggers(name, password, database, triggers)
    if carried:
        info(f"{len(carried)} trigger(s) moved with their tables")


def _by_database(triggers: list[Trigger], where) -> list[tuple[str, list[Trigger]]]:
    grouped: dict[str, list[Trigger]] = {}
    for trigger in triggers:
        grouped.setdefault(where(trigger), []).append(trigger)
    return sorted(grouped.items())


def create_scratch_database(name: str, database: str) -> None:
    """An empty database beside the live one that the site's account may use."""
    _sql(f"DROP DATABASE IF EXISTS `{database}`;\n"
         f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
         f"GRANT ALL PRIVILEGES ON `{_grant_name(database)}`.* TO '{name}'@'localhost';\n")


def swap_tables(live: str, incoming: str, aside: str, password: str, keep: Path | None = None) -> None:
    """In one RENAME TABLE (atomic): live's tables into ``aside``, ``incoming``'s
    into live. Views cannot move to another database: live's are read
    (and written to ``keep`` for the way back), dropped, and after the move
    ``incoming``'s are created in live by the site's account
    (``create_views``). Any step that fails puts the previous tables and
    views back and raises."""
    current = tables_of(live)
    new = tables_of(incoming)
    for database, tables in ((live, current), (incoming, new)):
        other = [table for table, kind in tables if kind not in ("BASE TABLE", "VIEW")]
        if other:
            raise NodeError("remote_step_failed", f"{database} holds {other[0]!r} of a kind a restore does not "
                                                  "move; restore moves tables and views only")
    current_tables = [table for table, kind in current if kind == "BASE TABLE"]
    new_tables = [table for table, kind in new if kind == "BASE TABLE"]
    if not new_tables:
        raise NodeError("remote_step_failed", f"the restored database {incoming} holds no table")
    # Live's may be broken (an update that changed a table a view reads: the reason for a rollback).
    previous_views = views_of(live, password, live, broken_ok=True)
    incoming_views = views_of(live, password, incoming)
    if keep is not None:
        save_views(keep, previous_views)
    create_scratch_database(live, aside)
    if previous_views:
        try:
            drop_views(live, password, live)
        except NodeError:
            _views_back(live, password, previous_views)
            raise
    try:
        move_tables([(live, aside, table) for table in current_tables] + [(incoming, live, table) for table in new_tables],
                    live, password)
    except (NodeError, subprocess.CalledProcessError):
        _views_back(live, password, previous_views)
        raise
    try:
        create_views(live, password, live, incoming_views)
    except NodeError as exc:
        move_tables([(live, incoming, table) for table in new_tables] + [(aside, live, table) for table in current_tables],
                    live, password)
        _views_back(live, password, previous_views)
        raise NodeError("remote_step_failed", f"{exc.message}; the previous tables and views are back") from None
    if previous_views or incoming_views:
        info(f"{len(incoming_views)} view(s) created again beside the tables ({len(previous_views)} kept for the way back)")


def _views_back(live: str, password: str, views: list[View]) -> None:
    """``views`` (live's before the swap) in live again, whatever views it holds now."""
    drop_views(live, password, live)
    create_views(live, password, live, views)


def drop_scratch_databases(name: str) -> None:
    incoming, aside = database_names(name)
    _sql(f"DROP DATABASE IF EXISTS `{incoming}`;\nDROP DATABASE IF EXISTS `{aside}`;\n")
    # The grants on the scratch names go too (a later restore grants them again).
    for database in (incoming, aside):
        run(["mariadb", "--batch"], input=f"REVOKE ALL PRIVILEGES ON `{_grant_name(database)}`.* "
                                          f"FROM '{name}'@'localhost';", check=False, cwd="/")


def purge_caches(params: dict) -> None:
    step("purge caches")
    info(f"{page_cache.purge([urlsplit(params['url']).hostname])} cached page(s) removed")
    redis = params.get("redis") or {}
    if redis.get("key_prefix"):
        if redis_acl.delete_keys(redis["key_prefix"]):
            info("object cache emptied")


def prune(root: Path, protect: set[str]) -> list[str]:
    found = [p for p in (root / "releases").iterdir() if safe_fs.RELEASE_NAME.match(p.name)]
    ordered = [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime)]
    removed = []
    for old in ordered[:-KEEP_RELEASES]:
        if old in protect:
            continue
        shutil.rmtree(root / "releases" / old)
        removed.append(old)
    return removed


class PreRestoreFailed(Exception):
    """The pre-restore backup failed (the parts were fine): nothing is restored."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def check_params(params: dict) -> tuple[dict, Path, dict | None]:
    parts = check_parts(params.get("parts") or {})
    work = work_dir(params)
    pre_restore = params.get("pre_restore")
    if pre_restore is not None and (pre_restore.get("system_name") != params["system_name"]
                                    or pre_restore.get("root") != params["root"]
                                    or pre_restore.get("scope") != "full"):
        raise NodeError("bad_parameters", "the pre-restore backup is not a full backup of this environment")
    if "files" in parts and not safe_fs.RELEASE_NAME.match(params.get("release") or ""):
        raise NodeError("bad_parameters", "unexpected release name")
    if "db" in parts and not env_setup.NAME.match((params.get("rewrite") or {}).get("from_system_name")
                                                  or params["system_name"]):
        raise NodeError("bad_parameters", "unexpected source environment name")
    return parts, work, pre_restore


def prepare(params: dict, parts: dict, work: Path, pre_restore: dict | None) -> tuple[dict, dict | None]:
    """Everything beside the live site, at once: each part read back and
    checked against the backup's checksum in the one read that also builds
    the release and unpacks the uploads, or loads the fresh database; the
    pre-restore backup (it only reads the live site). Returns (prepared by
    part, the pre-restore backup's result); a failed check removes what was
    built, forgets the pre-restore backup again and raises."""
    name = params["system_name"]
    root = Path(params["root"])
    repository = params["repository"]
    if not os.path.exists(backup_create.RESTIC):
        raise NodeError("remote_step_failed", "restic is not installed on this node; provision it again")
    left_aside(name, root)
    WORK_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(WORK_ROOT, 0o700)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    os.makedirs(backup_create.CACHE_DIR, mode=0o700, exist_ok=True)
    if safe_fs.ensure_layout(root, name):
        services.reload("nginx")
    account = safe_fs.Account.of(name)
    if "files" in parts and os.path.lexists(root / "releases" / params["release"]):
        raise NodeError("bad_parameters", f"release {params['release']} exists already")
    step(f"read the {' and '.join(sorted(parts))} part{'s' if len(parts) > 1 else ''} back from the repository, "
         "check them against the backup's checksum as they are unpacked beside the live site"
         + (", the pre-restore backup beside them" if pre_restore else ""))
    jobs = {}
    if "files" in parts:
        jobs["files"] = lambda: prepare_files(repository, parts["files"], work, root, params["release"], account)
    if "db" in parts:
        jobs["db"] = lambda: prepare_db(repository, parts["db"], work, params)
    if pre_restore is not None:
        jobs["pre_restore"] = lambda: backup_create.backup(pre_restore)
    results, errors = _settle(jobs)
    failed = next((errors[part] for part in sorted(parts) if part in errors), None)
    if failed is None and "pre_restore" in errors:
        failed = PreRestoreFailed(errors["pre_restore"])
    if failed is not None:
        discard(root, name, params.get("release"), parts)
        shutil.rmtree(work, ignore_errors=True)
        if pre_restore is not None:
            _forget_pre_restore(pre_restore["repository"], results.get("pre_restore"))
        raise failed
    shutil.rmtree(work, ignore_errors=True)  # the read-back parts: unpacked and loaded
    return {part: results[part] for part in parts}, results.get("pre_restore")


def switch(params: dict, parts: dict, prepared: dict, result: dict) -> None:
    """The swaps (tables renamed in one statement, the previous ones into
    ``<name>_prerestore``; uploads directories renamed; ``current``
    switched), then PHP-FPM, the non-production settings, the caches."""
    name = params["system_name"]
    root = Path(params["root"])
    release = params.get("release")
    if "db" in parts:
        incoming, aside = database_names(name)
        step("swap the restored database in (the previous tables kept aside)")
        swap_tables(name, incoming, aside, params["db_password"], keep=work_dir(params) / VIEWS_KEPT)
        result["database"] = True
        if prepared["db"].get("url_rewrite") is not None:
            result["url_rewrite"] = prepared["db"]["url_rewrite"]
    if "files" in parts:
        step("swap the restored uploads in (the previous ones kept aside)")
        result["uploads"] = swap_uploads(root, forward=True)
        step(f"switch to release {release}")
        link_current(root, release)
        result["release"] = release
    result["switched_at"] = time.time()
    # No PHP-FPM reload: the restored uploads (shared/) and the left release are forgotten by the opcache.
    php_opcache.forget_stale_code(name, root, safe_fs.current_release(root))
    for option, value in sorted((params.get("wp_options") or {}).items()):
        step(f"WordPress setting of a non-production environment: {option} = {value}")
        wp_helper_client.call(name, {"command": "option-set", "root": str(root), "url": params["url"],
                                     "name": option, "value": value})
    purge_caches(params)


def restore_in_place(params: dict) -> dict:
    """prepare, then switch, in one run. Nothing raised: the result says how it
    ended. ``refused`` ({code, message, retryable}): nothing of the live site
    was touched (a failed check, an earlier restore's state aside, a failed
    pre-restore backup: ``pre_restore_error`` then); ``failed``: the switch
    stopped half-way (the panel reverts); else the restore is live, unjudged."""
    result = {"release": None, "database": False, "uploads": False}
    try:
        result["previous_release"] = safe_fs.current_release(Path(params["root"]))
        parts, work, pre_restore = check_params(params)
        prepared, made = prepare(params, parts, work, pre_restore)
    except BaseException as exc:  # noqa: BLE001 - handed back: nothing of the live site was touched
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(exc, PreRestoreFailed):
            return {**result, "pre_restore_error": _as_error(exc.cause)}
        return {**result, "refused": _as_error(exc)}
    result["verified"] = sorted(parts)
    if made is not None:
        result["pre_restore"] = made
    try:
        switch(params, parts, prepared, result)
    except BaseException as exc:  # noqa: BLE001 - handed back: the panel puts the previous state back
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        result["failed"] = _as_error(exc)
    return result


def revert(params: dict) -> dict:
    """Undo what the restore phase swapped, judged from the node's own state (it may
    have stopped half-way): ``current`` back to the previous release, the
    uploads kept aside back, the tables kept aside back, the restored views
    dropped and the views kept in the work directory created again."""
    name = params["system_name"]
    root = Path(params["root"])
    if safe_fs.ensure_layout(root, name):
        services.reload("nginx")
    incoming, aside = database_names(name)
    reverted = []
    previous = params.get("previous_release")
    if previous and safe_fs.current_release(root) != previous:
        safe_fs.check_release(root, previous)
        step(f"switch back to release {previous}")
        link_current(root, previous)
        reverted.append("release")
    if swap_uploads(root, forward=False):
        step("put the previous uploads back")
        reverted.append("uploads")
    services.ensure_running("mariadb")
    kept = tables_of(aside)
    views_file = work_dir(params) / VIEWS_KEPT
    previous_views = saved_views(views_file)
    if kept or previous_views:
        # The restored views go first (no view moves; one may bear a name the previous tables use).
        drop_views(name, params["db_password"], name)
    if kept:
        step("put the previous database back")
        # The restored tables move into the scratch database, the previous ones back, in one statement.
        create_scratch_database(name, incoming)
        move_tables([(name, incoming, table) for table, _ in tables_of(name)]
                    + [(aside, name, table) for table, _ in kept], name, params["db_password"])
        reverted.append("database")
    if previous_views:
        step(f"create the previous {len(previous_views)} view(s) again")
        create_views(name, params["db_password"], name, previous_views)
    if previous_views is not None:
        views_file.unlink()
    php_opcache.forget_stale_code(name, root, safe_fs.current_release(root))
    restored = params.get("release")
    if restored and restored != previous and safe_fs.RELEASE_NAME.match(restored) \
            and safe_fs.current_release(root) != restored:
        release_files.remove(root / "releases" / restored)
    purge_caches(params)
    return {"reverted": reverted}


def cleanup(params: dict) -> dict:
    name = params["system_name"]
    root = Path(params["root"])
    shutil.rmtree(work_dir(params), ignore_errors=True)
    step("remove what the restore kept aside")
    services.ensure_running("mariadb")
    drop_scratch_databases(name)
    for entry in (UPLOADS_NEW, UPLOADS_OLD):
        _remove_site_tree(root / "shared", entry, name)
    for partial in (root / "releases").glob(".*.partial"):
        release_files.remove(partial)
    removed = prune(root, {release for release in (safe_fs.current_release(root), params.get("keep_release")) if release})
    if removed:
        info(f"removed old releases {', '.join(removed)}")
    return {"pruned": removed}


PHASES = {"restore": restore_in_place, "revert": revert, "cleanup": cleanup}


def restore(params: dict) -> dict:
    if not env_setup.NAME.match(params.get("system_name") or ""):
        raise NodeError("bad_parameters", "unexpected environment system name")
    phase = PHASES.get(params.get("phase"))
    if phase is None:
        raise NodeError("bad_parameters", "unknown restore phase")
    return phase(params)


if __name__ == "__main__":
    main(restore)
