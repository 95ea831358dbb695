"""Release directories as immutable, shareable code.

Release files belong to root and are writable by nobody else. That is what
makes it safe for several releases, and several environments, to share one
inode through a hardlink: neither environment's Linux user (nor its PHP) can
change a file the other one runs. Uploads and wp-config.php live in shared/
and are never part of a release's hardlinked tree.

Anything that changes a file in a release under construction must replace it
(write a new inode, rename it over the old name), never write into it, or the
change would show in every release that shares the inode.
"""

import os
import stat
import tempfile
from pathlib import Path

from nodelib import LIB_DIR, run
from safe_fs import UnsafePath, open_directory

OWNER = "root"
# Links every release has into its environment's shared/ (relative, so a copy
# of the release in another environment points at that one's shared/).
# wp-content/object-cache.php leads to the environment's Redis object cache
# drop-in when it is on (site_cache.py), and to nothing when it is off.
SHARED_LINKS = {"wp-content/uploads": "../../../shared/uploads", "wp-config.php": "../../shared/wp-config.php",
                "wp-content/object-cache.php": "../../../shared/object-cache.php"}
# Pressluft's must-use plugins: name in the release -> file in the node bundle.
MU_PLUGINS = {"pressluft-login.php": "pressluft-login-mu.php", "pressluft-staging.php": "pressluft-staging-mu.php"}


def link_tree(origin: Path, destination: Path) -> None:
    """``destination`` as a copy of ``origin`` where every file is a hardlink
    (directories and symlinks are new). Same filesystem only."""
    run(["cp", "-a", "--link", "--no-dereference", str(origin), str(destination)])


def seal(path: Path, site_owner: tuple[int, int] | None = None) -> None:
    """Every file and directory of a release: owned by root, writable only by root.

    Releases made before releases were sealed belong to the site's user, who
    may have planted links or hardlinks in them, so the walk never follows a
    link, changes owner and mode on open handles, and takes a directory away
    from the site (owner first) before it looks inside. A root-owned file that
    other names share and that is not sealed yet may be a system file
    hardlinked in: refused, never made readable. ``site_owner`` (uid, gid),
    when given, owns the release's uploads link (see own_uploads_link).
    """
    top = open_directory(path)
    try:
        _seal_directory(top, str(path))
    finally:
        os.close(top)
    if site_owner is not None:
        own_uploads_link(path, *site_owner)


def _sealed_mode(mode: int) -> int:
    return 0o755 if stat.S_ISDIR(mode) or mode & 0o111 else 0o644


def _seal_directory(fd: int, shown: str) -> None:
    os.fchown(fd, 0, 0)
    os.fchmod(fd, 0o755)
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            if info.st_uid != 0:
                os.chown(name, 0, 0, dir_fd=fd, follow_symlinks=False)
        elif stat.S_ISDIR(info.st_mode):
            child = open_directory(name, dir_fd=fd, shown=f"{shown}/{name}")
            try:
                _seal_directory(child, f"{shown}/{name}")
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            _seal_file(fd, name, f"{shown}/{name}")
        else:
            raise UnsafePath(f"{shown}/{name} is a device, pipe or socket, not release code")


def _seal_file(dir_fd: int, name: str, shown: str) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise UnsafePath(f"{shown} changed while it was sealed ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{shown} changed while it was sealed")
        mode = _sealed_mode(info.st_mode)
        if info.st_uid == 0 and info.st_gid == 0 and stat.S_IMODE(info.st_mode) == mode:
            return
        if info.st_uid == 0 and info.st_nlink > 1:
            raise UnsafePath(f"{shown} is root's, has other names and is not release code; refused to change it")
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def own_uploads_link(release: Path, uid: int, gid: int) -> None:
    """The uploads link belongs to the site's user, as its target shared/uploads does:
    Nginx follows a link only when link and target have one owner
    (``disable_symlinks if_not_owner``), which keeps every other link out."""
    os.chown(release / "wp-content" / "uploads", uid, gid, follow_symlinks=False)


def replace_file(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Put ``content`` at ``path`` as a new inode (breaks any hardlink the old file had)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".pressluft-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def remove(path: Path) -> None:
    """Unlink a file, link or whole directory tree of a release under construction
    (unlinking a hardlink leaves the other names of the inode alone)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        run(["rm", "-rf", "--one-file-system", str(path)])


def attach_pressluft_parts(release: Path) -> None:
    """What every release holds whatever its source brought: the links into
    shared/ (never the source's own uploads or wp-config.php) and Pressluft's
    must-use plugins (magic login; the staging safeguards, inert in production)."""
    for relative, target in SHARED_LINKS.items():
        link = release / relative
        remove(link)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    for name, bundled in MU_PLUGINS.items():
        plugin, content = release / "wp-content" / "mu-plugins" / name, (LIB_DIR / bundled).read_bytes()
        # An identical file stays (and stays shared with the releases it is linked to).
        if not (plugin.is_file() and not plugin.is_symlink() and plugin.read_bytes() == content):
            replace_file(plugin, content)
