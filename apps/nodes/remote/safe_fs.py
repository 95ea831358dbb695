"""Filesystem work inside an environment, where the site is the adversary.

Node programs run as root; everything an environment's Linux user (or its
PHP) can write is attacker-controlled input to them. The rules this module
enforces (docs/security.md):

- The environment root, ``releases/``, ``current`` and ``shared/`` belong to
  root, so the site cannot rename, replace or add entries there. What the
  site may write (``shared/uploads``, ``tmp``, ``logs``) is its own.
- A directory or file the node expects is opened with ``O_NOFOLLOW`` relative
  to an already opened parent, and ownership and modes are changed on the
  open handle (``fchown``/``fchmod``): a link planted where a directory should
  be is refused with ``unsafe_path``, never followed.
- ``current`` is followed only after checking it is root's link to
  ``releases/<release name>`` and that this is root's real directory.
- Site-owned files are read as the site's user, never as root.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nodelib import NodeError

RELEASE_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}([0-9]{6})?Z$")
WEB_GROUP = "www-data"
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(NodeError):
    def __init__(self, message: str):
        super().__init__("unsafe_path", message)


def open_directory(path: str | Path, *, dir_fd: int | None = None, shown: str | None = None) -> int:
    """An fd for a real directory at ``path`` (its last component is never followed)."""
    try:
        return os.open(path, DIRECTORY_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{shown or path} is a link or not a directory; refused to follow it") from None
        raise


def ensure_directory(parent_fd: int, name: str, uid: int, gid: int, mode: int, where: str) -> int:
    """``name`` in the open directory ``parent_fd``: created if missing, refused if it
    is anything but a directory, then given owner and mode through its own fd."""
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        pass
    fd = open_directory(name, dir_fd=parent_fd, shown=where)
    try:
        info = os.fstat(fd)
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.fchown(fd, uid, gid)
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class Account:
    """The environment's Linux user and group, and the web server's group."""

    name: str
    uid: int
    gid: int
    web_gid: int

    @classmethod
    def of(cls, name: str) -> Account:
        user = pwd.getpwnam(name)
        return cls(name, user.pw_uid, grp.getgrnam(name).gr_gid, grp.getgrnam(WEB_GROUP).gr_gid)


def ensure_layout(root: Path, name: str) -> bool:
    """The environment's directories with the owners and modes of the trust model.

    Also turns the layout of environments made before it (root owned by the
    site's user) into this one. Returns True if the web server had to join the
    environment's group (Nginx then needs a reload to see it).
    """
    account = Account.of(name)
    joined = _web_server_in_group(name)
    root.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    sites_root = open_directory(root.parent)
    try:
        info = os.fstat(sites_root)
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise UnsafePath(f"{root.parent} must be root's and writable by nobody else")
        top = ensure_directory(sites_root, root.name, 0, account.gid, 0o750, str(root))
    finally:
        os.close(sites_root)
    try:
        os.close(ensure_directory(top, "releases", 0, 0, 0o755, f"{root}/releases"))
        shared = ensure_directory(top, "shared", 0, account.gid, 0o750, f"{root}/shared")
        try:
            os.close(ensure_directory(shared, "uploads", account.uid, account.web_gid, 0o750, f"{root}/shared/uploads"))
        finally:
            os.close(shared)
        os.close(ensure_directory(top, "tmp", account.uid, account.gid, 0o700, f"{root}/tmp"))
        os.close(ensure_directory(top, "logs", account.uid, account.gid, 0o700, f"{root}/logs"))
    finally:
        os.close(top)
    return joined


def _web_server_in_group(name: str) -> bool:
    """Nginx (www-data) joins the environment's group: the only way in besides the site's user."""
    if WEB_GROUP in grp.getgrnam(name).gr_mem:
        return False
    subprocess.run(["gpasswd", "--add", WEB_GROUP, name], check=True, capture_output=True, text=True)
    return True


def current_release(root: Path) -> str | None:
    """The name of the release ``current`` points at, or None if there is no ``current``.

    Refused (``unsafe_path``) unless ``current`` is root's link to
    ``releases/<release name>`` and that is root's real, unshared directory.
    """
    link = root / "current"
    try:
        info = os.lstat(link)
    except FileNotFoundError:
        return None
    if not stat.S_ISLNK(info.st_mode) or info.st_uid != 0:
        raise UnsafePath(f"{link} is not the node's link to a release")
    target = os.readlink(link)
    parts = target.split("/")
    if len(parts) != 2 or parts[0] != "releases" or not RELEASE_NAME.match(parts[1]):
        raise UnsafePath(f"{link} points at {target!r}, not at a release of this environment")
    check_release(root, parts[1])
    return parts[1]


def check_release(root: Path, release: str) -> Path:
    """``releases/<release>`` as a real directory of root's that nobody else can write."""
    if not RELEASE_NAME.match(release):
        raise UnsafePath(f"{release!r} is not a release name")
    path = root / "releases" / release
    for checked in (root / "releases", path):
        info = os.lstat(checked)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
            raise UnsafePath(f"{checked} is not a directory of root's that only root can change")
    return path


def read_tail_as(user: str, path: Path, max_bytes: int, timeout: float = 20) -> bytes:
    """The last ``max_bytes`` of a site-owned regular file, read as the site's user
    (a link to another file or a device is refused by the reader, and the read
    cannot reach anything the site could not read itself)."""
    reader = (
        "import os, stat, sys\n"
        "try:\n"
        "    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)\n"
        "except FileNotFoundError:\n"
        "    sys.exit(0)\n"
        "except OSError:\n"
        "    sys.exit(3)\n"
        "info = os.fstat(fd)\n"
        "if not stat.S_ISREG(info.st_mode):\n"
        "    sys.exit(3)\n"
        "limit = int(sys.argv[2])\n"
        "os.lseek(fd, max(0, info.st_size - limit), os.SEEK_SET)\n"
        "data = os.read(fd, limit)\n"
        "sys.stdout.buffer.write(data)\n"
    )
    result = subprocess.run(
        ["runuser", "-u", user, "--", "/usr/bin/python3", "-I", "-S", "-c", reader, str(path), str(max_bytes)],
        capture_output=True, timeout=timeout, cwd="/",
    )
    if result.returncode == 3:
        raise UnsafePath(f"{path} is not a regular file of the site's; not read")
    if result.returncode != 0:
        raise NodeError("remote_step_failed", f"reading {path} as {user} failed (exit {result.returncode})")
    return result.stdout[-max_bytes:]
