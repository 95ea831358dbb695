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
import tempfile
from pathlib import Path

from nodelib import LIB_DIR, run

OWNER = "root"
# Links every release has into its environment's shared/ (relative, so a copy
# of the release in another environment points at that one's shared/).
SHARED_LINKS = {"wp-content/uploads": "../../../shared/uploads", "wp-config.php": "../../shared/wp-config.php"}
# Pressluft's must-use plugins: name in the release -> file in the node bundle.
MU_PLUGINS = {"pressluft-login.php": "pressluft-login-mu.php", "pressluft-staging.php": "pressluft-staging-mu.php"}


def link_tree(origin: Path, destination: Path) -> None:
    """``destination`` as a copy of ``origin`` where every file is a hardlink
    (directories and symlinks are new). Same filesystem only."""
    run(["cp", "-a", "--link", "--no-dereference", str(origin), str(destination)])


def seal(path: Path) -> None:
    """Every file and directory of a release: owned by root, writable only by root."""
    run(["chown", "-R", "--no-dereference", f"{OWNER}:{OWNER}", str(path)])
    run(["chmod", "-R", "u=rwX,go=rX", str(path)])


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
