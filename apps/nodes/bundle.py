"""The node-side programs: every ``apps/*/remote/`` file, installed on a node
under ``/usr/local/lib/pressluft/``. A node gets the bundle again whenever
its version (a hash of the files) differs from the one it has."""

import functools
import hashlib
from pathlib import Path

from django.conf import settings

# A setting so that test runs from several checkouts can share one node.
REMOTE_DIR = settings.NODE_LIB_DIR
VERSION_FILE = f"{REMOTE_DIR}/VERSION"


@functools.cache
def files() -> dict[str, bytes]:
    """File name -> content. Names are unique across apps (checked here)."""
    found: dict[str, bytes] = {}
    for path in sorted(Path(settings.BASE_DIR, "apps").glob("*/remote/*")):
        if not path.is_file() or path.suffix in {".pyc"}:
            continue
        if path.name in found:
            raise RuntimeError(f"two node-side files are named {path.name}")
        found[path.name] = path.read_bytes()
    return found


@functools.cache
def version() -> str:
    digest = hashlib.sha256()
    for name, content in files().items():
        digest.update(name.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()[:16]


def program_path(name: str) -> str:
    if name not in files():
        raise ValueError(f"no node-side program {name}")
    return f"{REMOTE_DIR}/{name}"
