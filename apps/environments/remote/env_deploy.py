#!/usr/bin/env python3
"""Build a new release of an environment from a git ref or an uploaded
archive, and switch to it.

Parameters (JSON on stdin): system_name, root, url, release (new directory
name), keep (how many releases to keep), and the source: either
git {"repository", "ref", "deploy_key"?} or archive {"path", "max_unpacked_bytes"}
(an archive the panel copied to the node; removed once unpacked).

Steps: fetch the ref (or unpack the archive, checked again entry by entry by
release_archive.py) into a scratch directory; build releases/<release> from
the current release with the source laid over it (see docs/deploys.md for
the layouts); link shared/ and Pressluft's must-use plugins; check WordPress loads from the new release with PHP's CLI (no
fatal error) before anything is switched; switch ``current`` atomically;
the opcache forgets the release left (php_opcache, no PHP-FPM reload); prune old releases. Idempotent: a release that exists
complete is reused.
"""

import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import git_user
import release_archive
import release_files
import php_opcache
import safe_fs
import services
import site_cache
import wp_helper_client
from env_setup import link_current
from nodelib import NodeError, info, main, run_bounded, step, write_file

NAME = re.compile(r"^pl[0-9a-f]{12}$")
RELEASE = re.compile(r"^[0-9]{8}T[0-9]{6}([0-9]{6})?Z$")
REF = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
# Paths of a release that belong to shared/ or to Pressluft, never to the repository.
PROTECTED = {"wp-config.php", "wp-content/uploads"}
ARCHIVE_DIR = Path("/var/lib/pressluft/deploy-archives")
ARCHIVE_NAME = re.compile(r"^[0-9a-f-]{36}$")
KNOWN_HOSTS_DIR = Path("/etc/pressluft/git-known-hosts")
KNOWN_HOSTS_MAX = 64 * 1024
KNOWN_HOSTS_LINE = re.compile(r"^\S+ (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
                              r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}$")
# The forms the panel accepts (apps/environments/services.py); local ones only when it says so.
REMOTE_REPOSITORY = re.compile(r"^(https://[^\s#]+|ssh://[^\s#]+|git@[A-Za-z0-9.-]+:[^\s#]+)$")
LOCAL_REPOSITORY = re.compile(r"^(file:///[^\s#]+|/[^\s#]+)$")
COMMIT = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")


def git_environment(name: str, deploy_key: str | None, work: Path, account, *, repository: str,
                    allow_local: bool) -> dict:
    """git's environment for the unprivileged account: nothing from root's
    environment or git configuration; HOME and the only config file are in
    ``work``, the account's own scratch directory (0700)."""
    # Only plain transports: git's ext:: and similar would run commands named in the URL.
    # A local repository (file:// or a path) only where the panel allows it (its test suite).
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(work), "XDG_CONFIG_HOME": str(work),
        "LANG": "C.UTF-8", "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "https:ssh" + (":file" if allow_local else ""),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(work / "gitconfig"),
    }
    config = "[core]\n\thooksPath = /dev/null\n"
    if allow_local and LOCAL_REPOSITORY.match(repository):
        # A test repository belongs to root: git refuses another user's
        # repository unless it is named here. Only this fetch's config says so.
        path = repository.removeprefix("file://")
        config += "[safe]\n" + "".join(f"\tdirectory = {_config_quote(each)}\n" for each in (path, f"{path}/.git"))
    _write_private(work / "gitconfig", config.encode(), account)
    if deploy_key:
        key_file = work / "deploy_key"
        _write_private(key_file, (deploy_key if deploy_key.endswith("\n") else deploy_key + "\n").encode(), account)
        # The repository host's key is pinned on first use, per environment; ssh
        # (as the git account) works on a copy, and root keeps the pinned file.
        known_hosts = work / "known_hosts"
        pinned = KNOWN_HOSTS_DIR / name
        if pinned.is_file():
            _write_private(known_hosts, pinned.read_bytes(), account)
        env["GIT_SSH_COMMAND"] = shlex.join([
            "ssh", "-i", str(key_file), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}",
        ])
    return env


def _config_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, data: bytes, account) -> None:
    """A new file only ``account`` may read (it must not exist yet: no link is followed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchown(handle.fileno(), account.pw_uid, account.pw_gid)
        handle.write(data)


def _read_own_file(path: Path, limit: int) -> bytes | None:
    """A regular file the git account wrote, read as root without following a
    link and at most ``limit`` bytes; None if it is anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def save_known_hosts(name: str, work: Path) -> None:
    """Keep what ssh pinned during the fetch: only new lines after the pinned
    ones, each a plain known_hosts entry (the copy was the git account's to change)."""
    pinned = KNOWN_HOSTS_DIR / name
    old = pinned.read_bytes() if pinned.is_file() else b""
    new = _read_own_file(work / "known_hosts", KNOWN_HOSTS_MAX)
    if new is None or new == old:
        return
    added = new[len(old):].decode(errors="replace").splitlines() if new.startswith(old) else None
    if added is None or not all(KNOWN_HOSTS_LINE.match(line) for line in added if line):
        info("the repository host's key was not pinned: ssh's known_hosts file came back in an unexpected form")
        return
    KNOWN_HOSTS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(pinned, new, 0o600)


def _git(account, work: Path, env: dict, args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    """One git command as the git account, in its scratch directory."""
    try:
        return run_bounded(["git", *args], env=env, cwd=str(work), user=account.pw_uid, group=account.pw_gid,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NodeError("deploy_source_failed", f"git {args[2] if args[0] == '-C' else args[0]} did not finish "
                                                f"within {int(timeout)} s", retryable=True) from None


def _git_failed(what: str, result: subprocess.CompletedProcess, hint: str = "") -> NodeError:
    lines = result.stderr.strip().splitlines()
    return NodeError("deploy_source_failed", f"git could not {what}: {' | '.join(lines[-3:])}{hint}")


def fetch(name: str, git: dict, into: Path) -> str:
    """Shallow fetch and checkout of one ref (branch, tag or commit) as the
    unprivileged git account, in a scratch directory of its own; the tree is
    then moved to ``into`` and made root's before anything reads it. Returns
    the commit id."""
    repository, ref = git["repository"], git["ref"]
    allow_local = git.get("allow_local") is True
    if not REF.match(ref) or ref.startswith("-") or ".." in ref:
        raise NodeError("bad_parameters", f"unusable git ref {ref!r}")
    if LOCAL_REPOSITORY.match(repository):
        if not allow_local:
            raise NodeError("deploy_source_invalid", "a local repository (file:// or a path on the node) is not "
                                                     "accepted; deploy from an https:// or ssh repository")
    elif not REMOTE_REPOSITORY.match(repository):
        raise NodeError("bad_parameters", "unusable repository URL")
    account = git_user.ensure()
    work = Path(tempfile.mkdtemp(prefix="pressluft-git-"))
    try:
        os.chown(work, account.pw_uid, account.pw_gid)
        env = git_environment(name, git.get("deploy_key"), work, account, repository=repository,
                              allow_local=allow_local)
        checkout = work / "checkout"
        result = _git(account, work, env, ["init", "--quiet", str(checkout)])
        if result.returncode != 0:
            raise _git_failed("prepare the checkout", result)
        # "--" keeps a repository value that starts with "-" from being read as an option.
        result = _git(account, work, env, ["-C", str(checkout), "remote", "add", "origin", "--", repository])
        if result.returncode != 0:
            raise _git_failed("prepare the checkout", result)
        result = _git(account, work, env, ["-C", str(checkout), "fetch", "--quiet", "--depth", "1", "origin", ref],
                      timeout=600)
        if result.returncode != 0:
            hint = ""
            if "GIT_SSH_COMMAND" in env and "Permission denied" in result.stderr:
                hint = " (is the environment's deploy key installed at the repository host?)"
            raise _git_failed(f"fetch {ref}", result, hint)
        result = _git(account, work, env, ["-C", str(checkout), "checkout", "--quiet", "FETCH_HEAD"], timeout=600)
        if result.returncode != 0:
            raise _git_failed(f"check out {ref}", result)
        result = _git(account, work, env, ["-C", str(checkout), "rev-parse", "HEAD"])
        commit = result.stdout.strip()
        if result.returncode != 0 or not COMMIT.match(commit):
            raise _git_failed(f"read the commit of {ref}", result)
        if git.get("deploy_key"):
            save_known_hosts(name, work)
        os.rename(checkout, into)
        take_tree(into, account)
        return commit
    finally:
        shutil.rmtree(work, ignore_errors=True)


def take_tree(top: Path, account) -> None:
    """Make a tree the git account wrote root's, directory by directory, each
    made root's before it is listed, without following links: once a
    directory is root's, nothing the account may still run can add, remove or
    replace an entry in it. Files get 0644 (0755 when executable); entries
    the account does not own, or that have other names (hard links), are left
    as they are: the tree check refuses them. git's own directory goes."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(top, flags)
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o755)
        if os.path.lexists(top / ".git"):
            # Never needed in a release; its contents are git's internal state.
            shutil.rmtree(".git", dir_fd=fd)
        identity = os.fstat(fd)
    finally:
        os.close(fd)
    pending = [(top, (identity.st_dev, identity.st_ino))]
    while pending:
        path, expected = pending.pop()
        fd = os.open(path, flags)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != expected:
                raise NodeError("deploy_source_invalid", f"{path}: changed while the checkout was taken over")
            if opened.st_uid == account.pw_uid:
                os.fchown(fd, 0, 0)
                os.fchmod(fd, 0o755)
            with os.scandir(fd) as entries:
                for entry in entries:
                    found = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISDIR(found.st_mode):
                        pending.append((path / entry.name, (found.st_dev, found.st_ino)))
                        continue
                    if found.st_uid != account.pw_uid or (stat.S_ISREG(found.st_mode) and found.st_nlink > 1):
                        continue
                    os.chown(entry.name, 0, 0, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISREG(found.st_mode):
                        os.chmod(entry.name, 0o755 if found.st_mode & 0o100 else 0o644, dir_fd=fd)
        finally:
            os.close(fd)


def unpack(archive: dict, into: Path) -> str:
    """Unpack the archive the panel sent (checked again here); returns its sha256.
    The archive file is removed in any case: the panel sends it again on a retry."""
    path = Path(archive["path"])
    if path.parent != ARCHIVE_DIR or not ARCHIVE_NAME.match(path.name):
        raise NodeError("bad_parameters", "unexpected archive path")
    if not path.is_file():
        raise NodeError("deploy_source_failed", f"the archive {path} is not on the node")
    try:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
        into.mkdir(mode=0o755)
        try:
            inspection = release_archive.extract(str(path), str(into), max_bytes=int(archive["max_unpacked_bytes"]))
        except release_archive.ArchiveRejected as exc:
            raise NodeError("archive_invalid", f"the archive was refused: {exc}")
        info(f"{len(inspection.members)} entries, {inspection.total_bytes} bytes ({inspection.format})")
        return digest.hexdigest()
    finally:
        path.unlink(missing_ok=True)


def _is_dir(path: Path) -> bool:
    """A directory itself, not a link to one (a source's links are never followed)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def content_root(checkout: Path) -> tuple[Path, str]:
    """Where the source's files go in the release, by its layout."""
    if _is_dir(checkout / "wp-content") and _is_dir(checkout / "wp-includes"):
        return checkout, "wordpress"
    if _is_dir(checkout / "wp-content"):
        return checkout / "wp-content", "wp-content-dir"
    if any(_is_dir(checkout / name) for name in ("themes", "plugins", "mu-plugins")):
        return checkout, "wp-content"
    raise NodeError("deploy_layout_unknown",
                    "the repository holds neither a wp-content tree (themes/, plugins/, mu-plugins/) "
                    "nor a WordPress tree (wp-includes/ and wp-content/)")


def check_source(tree: Path) -> None:
    """The fetched or unpacked tree, by the rules uploaded archives are checked
    by (release_archive.py): every link relative and staying inside the tree,
    no link through another link, no hard link, device or FIFO. Nothing of a
    refused source reaches a release."""
    problems = release_archive.tree_problems(str(tree))
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise NodeError("deploy_source_invalid", f"the source was refused: {shown}")


def build(root: Path, release: str, source: Path, layout: str, live: str, account: safe_fs.Account) -> Path:
    """releases/<release>: the current release with ``source`` laid over it.

    Files the deploy does not touch (core, untouched plugins) are hardlinks
    to the current release's; everything the source brings is a new file.
    """
    final = root / "releases" / release
    if (final / ".pressluft-complete").exists():
        return final
    staging = root / "releases" / f".{release}.partial"
    release_files.remove(staging)
    current = safe_fs.check_release(root, live)
    release_files.seal(current, (account.uid, account.gid))  # a release from before sealing must not be shared writable
    release_files.link_tree(current, staging)
    release_files.remove(staging / ".pressluft-complete")
    target = staging if layout == "wordpress" else staging / "wp-content"
    for entry in source.iterdir():
        if entry.name == ".git":
            continue
        destination = target / entry.relative_to(source)
        full = destination.relative_to(staging).as_posix()
        if full in PROTECTED or full.startswith("wp-content/uploads/"):
            continue
        # Removing first, then copying, gives new inodes: a copy onto an
        # existing name would write into the file the current release shares.
        release_files.remove(destination)
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, destination, symlinks=True)
        else:
            shutil.copy2(entry, destination, follow_symlinks=False)
    # A source's own mu-plugins/ or wp-content/ replaced Pressluft's parts along with the rest.
    release_files.attach_pressluft_parts(staging)
    release_files.replace_file(staging / ".pressluft-complete", (release + "\n").encode())
    release_files.seal(staging, (account.uid, account.gid))
    staging.rename(final)
    return final


def prune(root: Path, keep: int, protect: set[str]) -> list[str]:
    found = [p for p in (root / "releases").iterdir() if RELEASE.match(p.name)]
    releases = [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime)]
    removed = []
    for old in releases[:-keep] if keep > 0 else []:
        if old in protect:
            continue
        shutil.rmtree(root / "releases" / old)
        removed.append(old)
    return removed


def deploy(params: dict) -> dict:
    name = params["system_name"]
    release = params["release"]
    if not NAME.match(name) or not RELEASE.match(release):
        raise NodeError("bad_parameters", "unexpected environment or release name")
    root = Path(params["root"])
    # The site could have planted links in its directories; they are refused here.
    if safe_fs.ensure_layout(root, name):
        services.reload("nginx")
    previous = safe_fs.current_release(root)
    if previous is None:
        raise NodeError("remote_step_failed", "the environment has no current release to deploy onto")
    account = safe_fs.Account.of(name)

    commit = sha256 = None
    with tempfile.TemporaryDirectory(prefix="pressluft-deploy-") as scratch:
        checkout = Path(scratch) / "checkout"
        if "archive" in params:
            step("unpack the uploaded archive")
            sha256 = unpack(params["archive"], checkout)
        else:
            git = params["git"]
            step(f"fetch {git['ref']}")
            commit = fetch(name, git, checkout)
            info(f"commit {commit}")
        check_source(checkout)
        source, layout = content_root(checkout)
        info(f"layout: {layout}")
        step(f"build release {release}")
        final = build(root, release, source, layout, previous, account)

    step("check that WordPress loads from the new release")
    try:
        wp_helper_client.call(name, {"command": "site-info", "root": str(root), "release": str(final),
                                     "url": params["url"]})
    except NodeError:
        # Never live, never to be rolled back to: it goes at once.
        release_files.remove(final)
        raise

    step("switch to the new release")
    switched_at = time.time()
    link_current(root, release)
    # New real paths, new opcache keys: no PHP-FPM reload (php_opcache.py says why).
    php_opcache.forget_stale_code(name, root, release)

    step("purge the page cache and the object cache")
    cache = params.get("cache") or {"hostnames": [urlsplit(params["url"]).hostname], "key_prefix": None}
    site_cache.purge_after_switch(cache["hostnames"], cache["key_prefix"])

    step("prune old releases")
    removed = prune(root, int(params.get("keep", 5)), {release, previous})
    if removed:
        info(f"removed {', '.join(removed)}")
    return {"release": release, "previous": previous, "commit": commit, "sha256": sha256, "layout": layout,
            "pruned": removed, "switched_at": switched_at}


if __name__ == "__main__":
    main(deploy)
