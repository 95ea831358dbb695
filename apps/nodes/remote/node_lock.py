"""The node's own fence around the programs a job runs (standard library only).

The panel fences a job's run with a lease, but a worker that stalls (a pause,
a lost database connection) cannot stop a program already running on the
node. So the node has the last word: a program started for a job holds the
locks of its scope for as long as it runs, and remembers the newest attempt
of each job it has seen.

- Scopes nest: a node-wide program (provisioning) holds its node exclusively;
  a site-wide one holds the node shared and its site exclusively; an
  environment's holds node and site shared and its environment exclusively.
  A second program for an overlapping scope waits for the first, then gives
  up with the retryable code ``node_busy``.
- A program of an older attempt than one already started for its job is a
  stale run the panel has given up on: it refuses to start (``claim_stale``).

Changes to the node's shared configuration (Nginx, PHP-FPM, certbot: write,
validate, restore, reload) take one more lock, ``shared_config``, so that
programs of different environments running side by side (a node with more
than one job slot) never validate or reload each other's half-written files.

Locks are ``flock`` on files in a root-only directory, taken with close-on-
exec descriptors, so they end with the program (or its killed session) and
no daemon it starts inherits them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import stat
import time
from pathlib import Path

FENCE_DIR = Path("/var/lib/pressluft/fence")
LOCK_NAME = re.compile(r"^(node|site|environment)-[0-9a-f]{32}$")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MODES = {"shared": fcntl.LOCK_SH, "exclusive": fcntl.LOCK_EX}
POLL_SECONDS = 0.2
# Attempt records of jobs older than this are forgotten (a job never runs this long).
FORGET_AFTER_SECONDS = 30 * 24 * 3600


class Busy(Exception):
    """Another program holds an overlapping scope (retryable)."""


class Stale(Exception):
    """A newer attempt of the same job has started on this node."""


class BadFence(Exception):
    """The panel sent a fence this program cannot read."""


def _private_dir(path: Path) -> Path:
    """``path`` as root's own directory (0700); a link or foreign owner there is refused."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise OSError(f"{path} is not root's directory")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def _open_lock(directory: Path, name: str) -> int:
    return os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another program"
    except OSError:
        return "another program"


def _lock(fd: int, name: str, mode: str, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, MODES[mode] | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Busy(f"{name} is held by {_holder(fd)}") from None
            time.sleep(POLL_SECONDS)


def _check_attempt(directory: Path, job: str, attempt: int) -> None:
    """Record ``attempt`` as the job's newest, or refuse it if a newer one started."""
    attempts = _private_dir(directory / "attempts")
    record = attempts / job
    try:
        newest = int(record.read_text().strip() or -1)
    except FileNotFoundError:
        newest = -1
    if newest > attempt:
        raise Stale(f"attempt {attempt + 1} of job {job} is stale: attempt {newest + 1} has started on this node")
    if newest < attempt:
        temporary = attempts / f".{job}.{os.getpid()}"
        temporary.write_text(f"{attempt}\n")
        os.replace(temporary, record)
    if random.random() < 0.01:
        _forget_old(attempts)


def _forget_old(attempts: Path) -> None:
    cutoff = time.time() - FORGET_AFTER_SECONDS
    for entry in os.scandir(attempts):
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)


def check_fence(fence: dict) -> tuple[str, int, list[tuple[str, str]], float]:
    job = str(fence.get("job", ""))
    attempt = fence.get("attempt")
    raw_locks = fence.get("locks")
    locks = [tuple(pair) for pair in raw_locks if isinstance(pair, list)] if isinstance(raw_locks, list) else []
    wait = fence.get("wait", 30)
    if not JOB_ID.match(job) or not isinstance(attempt, int) or attempt < 0:
        raise BadFence("fence: job must be 32 hex digits and attempt a count")
    if not locks or len(locks) != len(raw_locks) or any(
            len(pair) != 2 or not LOCK_NAME.match(str(pair[0])) or str(pair[1]) not in MODES for pair in locks):
        raise BadFence("fence: locks must be [name, shared|exclusive] pairs")
    if locks[-1][1] != "exclusive":
        raise BadFence("fence: the innermost lock is the program's own (exclusive)")
    if not isinstance(wait, (int, float)) or not 0 <= wait <= 3600:
        raise BadFence("fence: wait must be seconds")
    return job, attempt, locks, float(wait)


@contextlib.contextmanager
def held(fence: dict, directory: Path = FENCE_DIR):
    """Hold the fence's locks (outermost first) while the program runs."""
    job, attempt, locks, wait = check_fence(fence)
    directory = _private_dir(directory)
    deadline = time.monotonic() + wait
    descriptors = []
    try:
        for name, mode in locks:
            fd = _open_lock(directory, name)
            descriptors.append(fd)
            _lock(fd, name, mode, deadline)
        # The innermost lock is this program's alone: it names the holder for whoever waits,
        # and it serialises the runs of this job, so the attempt check cannot race.
        _check_attempt(directory, job, attempt)
        os.ftruncate(descriptors[-1], 0)
        os.pwrite(descriptors[-1], f"job {job} attempt {attempt + 1} (pid {os.getpid()})\n".encode(), 0)
        yield
    finally:
        for fd in reversed(descriptors):
            os.close(fd)


CONFIG_WAIT_SECONDS = 120
_config_depth = 0


@contextlib.contextmanager
def shared_config(directory: Path = FENCE_DIR, wait: float = CONFIG_WAIT_SECONDS):
    """Hold the node's configuration lock; nested uses in one program hold it once."""
    global _config_depth
    if _config_depth:
        _config_depth += 1
        try:
            yield
        finally:
            _config_depth -= 1
        return
    fd = _open_lock(_private_dir(directory), "config")
    try:
        _lock(fd, "the node's configuration", "exclusive", time.monotonic() + wait)
        _config_depth = 1
        try:
            yield
        finally:
            _config_depth = 0
    finally:
        os.close(fd)
