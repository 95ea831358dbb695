#!/usr/bin/env python3
"""Build a new release of an environment from a git ref and switch to it.

Parameters (JSON on stdin): system_name, root, url, release (new directory
name), git {"repository", "ref"}, keep (how many releases to keep).

Steps: fetch the ref into a scratch checkout; build releases/<release> from
the current release with the repository laid over it (a repository holds
either a wp-content tree, or a whole WordPress tree with wp-content/ in it);
link shared/; check WordPress loads from the new release with PHP's CLI (no
fatal error) before anything is switched; switch ``current`` atomically;
reload PHP-FPM; prune old releases. Idempotent: a release that exists
complete is reused.
"""

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import page_cache
import release_files
import services
import wp_helper_client
from env_setup import link_current
from nodelib import NodeError, info, main, run, step

NAME = re.compile(r"^pl[0-9a-f]{12}$")
RELEASE = re.compile(r"^[0-9]{8}T[0-9]{6}([0-9]{6})?Z$")
REF = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
# Paths of a release that belong to shared/ or to Pressluft, never to the repository.
PROTECTED = {"wp-config.php", "wp-content/uploads"}


def fetch(repository: str, ref: str, into: Path) -> str:
    """Shallow fetch of one ref (branch, tag or commit); returns the commit id."""
    if not REF.match(ref) or ref.startswith("-") or ".." in ref:
        raise NodeError("bad_parameters", f"unusable git ref {ref!r}")
    # Only plain transports: git's ext:: and similar would run commands named in the URL.
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL="https:ssh:git:file")
    run(["git", "init", "--quiet", str(into)], env=env)
    # "--" keeps a repository value that starts with "-" from being read as an option.
    run(["git", "-C", str(into), "remote", "add", "origin", "--", repository], env=env)
    fetched = run(["git", "-C", str(into), "fetch", "--quiet", "--depth", "1", "origin", ref], env=env,
                  check=False, timeout=600)
    if fetched.returncode != 0:
        detail = " | ".join(fetched.stderr.strip().splitlines()[-2:])
        raise NodeError("deploy_source_failed", f"git could not fetch {ref}: {detail}")
    run(["git", "-C", str(into), "checkout", "--quiet", "FETCH_HEAD"], env=env)
    return run(["git", "-C", str(into), "rev-parse", "HEAD"], env=env).stdout.strip()


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


def build(root: Path, release: str, source: Path, layout: str) -> Path:
    """releases/<release>: the current release with ``source`` laid over it.

    Files the deploy does not touch (core, untouched plugins) are hardlinks
    to the current release's; everything the source brings is a new file.
    """
    final = root / "releases" / release
    if (final / ".pressluft-complete").exists():
        return final
    staging = root / "releases" / f".{release}.partial"
    release_files.remove(staging)
    current = (root / "current").resolve()
    release_files.seal(current)  # a release from before sealing must not be shared writable
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
    release_files.replace_file(staging / ".pressluft-complete", (release + "\n").encode())
    release_files.seal(staging)
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
    previous = os.readlink(root / "current").split("/")[-1]

    with tempfile.TemporaryDirectory(prefix="pressluft-deploy-") as scratch:
        checkout = Path(scratch) / "checkout"
        step(f"fetch {params['git']['ref']}")
        commit = fetch(params["git"]["repository"], params["git"]["ref"], checkout)
        info(f"commit {commit}")
        source, layout = content_root(checkout)
        info(f"layout: {layout}")
        step(f"build release {release}")
        final = build(root, release, source, layout)

    step("check that WordPress loads from the new release")
    wp_helper_client.call(name, {"command": "site-info", "root": str(root), "release": str(final), "url": params["url"]})

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
    return {"release": release, "previous": previous, "commit": commit, "layout": layout, "pruned": removed,
            "switched_at": switched_at}


if __name__ == "__main__":
    main(deploy)
