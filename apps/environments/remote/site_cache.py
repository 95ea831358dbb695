"""An environment's caches on its node: the Redis object cache drop-in and
purging (page cache entries and Redis keys). Imported by the programs that
change what a site shows (cache toggle and purge, deploy, rollback, clone).

The drop-in is shared/object-cache.php, root's and readable by the site's
group only; every release links wp-content/object-cache.php to it
(release_files.SHARED_LINKS), so turning the object cache on or off never
touches release code: with the file gone the link leads nowhere and
WordPress keeps its cache per request.
"""

import os
from pathlib import Path

import page_cache
import redis_acl
import safe_fs
from nodelib import LIB_DIR, NodeError, info, write_file

DROP_IN = "pressluft-object-cache.php"
LINK = "wp-content/object-cache.php"
LINK_TARGET = "../../../shared/object-cache.php"


def drop_in_path(root: Path) -> Path:
    return root / "shared" / "object-cache.php"


def install_drop_in(root: Path, name: str) -> bool:
    """Put the drop-in in shared/ and make sure the live release links to it.
    Returns True if anything changed."""
    changed = write_file(drop_in_path(root), (LIB_DIR / DROP_IN).read_bytes(), 0o640, owner="root", group=name)
    return ensure_link(root) or changed


def remove_drop_in(root: Path) -> bool:
    path = drop_in_path(root)
    if os.path.lexists(path):
        path.unlink()
        return True
    return False


def ensure_link(root: Path) -> bool:
    """Releases made before the drop-in existed lack its link: the live one gets
    it (a new root-owned link in root's directory; no file of the release changes)."""
    release = safe_fs.current_release(root)
    if release is None:
        return False
    wp_content = root / "releases" / release / "wp-content"
    link = wp_content / "object-cache.php"
    try:
        if os.readlink(link) == LINK_TARGET:
            return False
    except FileNotFoundError:
        pass
    except OSError:
        pass  # a file of the release's source: ours replaces it, as a new release would
    descriptor = safe_fs.open_directory(wp_content)
    try:
        temporary = ".object-cache.php.pressluft"
        try:
            os.unlink(temporary, dir_fd=descriptor)
        except FileNotFoundError:
            pass
        os.symlink(LINK_TARGET, temporary, dir_fd=descriptor)
        os.rename(temporary, "object-cache.php", src_dir_fd=descriptor, dst_dir_fd=descriptor)
    finally:
        os.close(descriptor)
    return True


def apply_object_cache(root: Path, name: str, enabled: bool) -> bool:
    """The drop-in present exactly when the object cache is on."""
    return install_drop_in(root, name) if enabled else remove_drop_in(root)


def purge(hostnames: list[str], key_prefix: str | None) -> dict:
    """Everything this environment has cached: its page cache entries (by host
    name) and its Redis keys (SCAN + UNLINK under its prefix, as Redis's
    administrator; never FLUSHALL or FLUSHDB: other sites share the server)."""
    pages = page_cache.purge(hostnames)
    info(f"{pages} cached page(s) removed")
    keys = False
    if key_prefix:
        keys = redis_acl.delete_keys(key_prefix)
        info(f"Redis keys under {key_prefix} removed" if keys else "Redis is not running: no keys to remove")
    return {"pages_removed": pages, "redis_keys_removed": keys}


def purge_after_switch(hostnames: list[str], key_prefix: str | None) -> None:
    """The purge that ends a deploy or rollback: the new code is live already,
    so a purge that fails is reported in the log, not made the change's failure."""
    try:
        purge(hostnames, key_prefix)
    except NodeError as exc:
        info(f"the caches could not be purged ({exc.code}: {exc.message}); purge them again from the panel")
