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
reload PHP-FPM; prune old releases. Idempotent: a release that exists
complete is reused.
"""

import hashlib
import os
import re
import shlex
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import page_cache
import release_archive
import release_files
import safe_fs
import services
import wp_helper_client
from env_setup import link_current
from nodelib import NodeError, info, main, run, step

NAME = re.compile(r"^pl[0-9a-f]{12}$")
RELEASE = re.compile(r"^[0-9]{8}T[0-9]{6}([0-9]{6})?Z$")
REF = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
# Paths of a release that belong to shared/ or to Pressluft, never to the repository.
PROTECTED = {"wp-config.php", "wp-content/uploads"}
ARCHIVE_DIR = Path("/var/lib/pressluft/deploy-archives")
ARCHIVE_NAME = re.compile(r"^[0-9a-f-]{36}$")
KNOWN_HOSTS_DIR = Path("/etc/pressluft/git-known-hosts")


def git_environment(name: str, deploy_key: str | None, scratch: Path) -> dict:
    # Only plain transports: git's ext:: and similar would run commands named in the URL.
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL="https:ssh:git:file")
    if deploy_key:
        key_file = scratch / "deploy_key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(deploy_key if deploy_key.endswith("\n") else deploy_key + "\n")
        KNOWN_HOSTS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The repository host's key is pinned on first use, per environment.
        known_hosts = KNOWN_HOSTS_DIR / name
        env["GIT_SSH_COMMAND"] = shlex.join([
            "ssh", "-i", str(key_file), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}",
        ])
    return env


def fetch(repository: str, ref: str, into: Path, env: dict) -> str:
    """Shallow fetch of one ref (branch, tag or commit); returns the commit id."""
    if not REF.match(ref) or ref.startswith("-") or ".." in ref:
        raise NodeError("bad_parameters", f"unusable git ref {ref!r}")
    run(["git", "init", "--quiet", str(into)], env=env)
    # "--" keeps a repository value that starts with "-" from being read as an option.
    run(["git", "-C", str(into), "remote", "add", "origin", "--", repository], env=env)
    fetched = run(["git", "-C", str(into), "fetch", "--quiet", "--depth", "1", "origin", ref], env=env,
                  check=False, timeout=600)
    if fetched.returncode != 0:
        lines = fetched.stderr.strip().splitlines()
        detail = " | ".join(lines[-3:])
        if "GIT_SSH_COMMAND" in env and any("Permission denied" in line for line in lines):
            detail += " (is the environment's deploy key installed at the repository host?)"
        raise NodeError("deploy_source_failed", f"git could not fetch {ref}: {detail}")
    run(["git", "-C", str(into), "checkout", "--quiet", "FETCH_HEAD"], env=env)
    return run(["git", "-C", str(into), "rev-parse", "HEAD"], env=env).stdout.strip()


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


def content_root(checkout: Path) -> tuple[Path, str]:
    """Where the repository's files go in the release, by its layout."""
    if (checkout / "wp-content").is_dir() and (checkout / "wp-includes").is_dir():
        return checkout, "wordpress"
    if (checkout / "wp-content").is_dir():
        return checkout / "wp-content", "wp-content-dir"
    if any((checkout / name).is_dir() for name in ("themes", "plugins", "mu-plugins")):
        return checkout, "wp-content"
    raise NodeError("deploy_layout_unknown",
                    "the repository holds neither a wp-content tree (themes/, plugins/, mu-plugins/) "
                    "nor a WordPress tree (wp-includes/ and wp-content/)")


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
            commit = fetch(git["repository"], git["ref"], checkout, git_environment(name, git.get("deploy_key"), Path(scratch)))
            info(f"commit {commit}")
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
    services.reload("php-fpm")

    step("purge the page cache")
    info(f"{page_cache.purge([urlsplit(params['url']).hostname])} cached page(s) removed")

    step("prune old releases")
    removed = prune(root, int(params.get("keep", 5)), {release, previous})
    if removed:
        info(f"removed {', '.join(removed)}")
    return {"release": release, "previous": previous, "commit": commit, "sha256": sha256, "layout": layout,
            "pruned": removed, "switched_at": switched_at}


if __name__ == "__main__":
    main(deploy)
