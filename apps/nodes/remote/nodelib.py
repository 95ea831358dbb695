"""Shared helpers for the node-side programs (standard library only).

Every node-side program is run by the panel over SSH as
``python3 /usr/local/lib/pressluft/<program>.py`` with its parameters as one
JSON object on stdin. It reports with lines on stdout:

    STEP <text>        a stage began (shown in the job log)
    INFO <text>        a detail
    RESULT <json>      the program's result (last line)
    ERROR <code> <retryable 0|1> <text>   why it failed (before a non-zero exit)

Programs are idempotent: each step checks what is already there.
Commands are argument lists, never shell strings.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIB_DIR = Path(__file__).resolve().parent


class NodeError(Exception):
    def __init__(self, code: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


_current_step = "start"


def step(text: str) -> None:
    global _current_step
    _current_step = text
    print(f"STEP {text}", flush=True)


def info(text: str) -> None:
    print(f"INFO {text}", flush=True)


def read_params() -> dict:
    raw = sys.stdin.read()
    return json.loads(raw) if raw.strip() else {}


def main(handler) -> None:
    """Run ``handler(params) -> dict`` with the protocol above."""
    try:
        result = handler(read_params())
    except NodeError as exc:
        print(f"ERROR {exc.code} {int(exc.retryable)} {exc.message}", flush=True)
        sys.exit(2)
    except OSError as exc:
        # A file or directory in the way, a full disk, a permission: say which step and path.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"ERROR remote_step_failed 0 {_current_step}: {exc.strerror or exc}{where}", flush=True)
        sys.exit(2)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.output or "").strip().splitlines()[-3:]
        print(f"ERROR remote_step_failed 0 {_current_step}: {exc.cmd[0]} exited {exc.returncode}: {' | '.join(tail)}",
              flush=True)
        sys.exit(2)
    print("RESULT " + json.dumps(result or {}, sort_keys=True), flush=True)


def run(argv: list[str], *, input: str | None = None, check: bool = True, env: dict | None = None,
        timeout: float | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, input=input, capture_output=True, text=True, check=check, env=env, timeout=timeout, cwd=cwd
    )


def write_file(path: str | Path, content: str | bytes, mode: int = 0o644, owner: str | None = None,
               group: str | None = None) -> bool:
    """Atomically replace ``path`` with ``content``. Returns True if it changed.

    Safe in a directory someone else can write to: the old file is read
    without following a link, and the new one gets its mode and owner on
    its open handle before it is renamed into place.
    """
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    uid = gid = -1
    if owner is not None:
        import grp
        import pwd

        uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(group or owner).gr_gid
    if _unchanged(path, data, mode, uid, gid):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                os.fchown(handle.fileno(), uid, gid)
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
    return True


def _unchanged(path: Path, data: bytes, mode: int, uid: int, gid: int) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # missing, or a link: replaced either way
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data) or stat.S_IMODE(info.st_mode) != mode:
            return False
        if uid != -1 and (info.st_uid, info.st_gid) != (uid, gid):
            return False
        return handle.read(len(data) + 1) == data


def install_config(path: str | Path, content: str, validate: list[str] | None, mode: int = 0o644) -> bool:
    """Replace a config file, run ``validate``; on failure put the old file back.

    Returns True if the file changed (the caller then reloads the service).
    """
    path = Path(path)
    previous = path.read_bytes() if path.exists() else None
    if not write_file(path, content, mode):
        return False
    if validate:
        check = run(validate, check=False)
        if check.returncode != 0:
            if previous is None:
                path.unlink()
            else:
                write_file(path, previous, mode)
            detail = " | ".join((check.stderr or check.stdout).strip().splitlines()[-3:])
            raise NodeError("config_invalid", f"{path} was refused by {validate[0]}: {detail}")
    return True


def remove_config(path: str | Path, validate: list[str] | None) -> bool:
    path = Path(path)
    if not path.exists():
        return False
    previous = path.read_bytes()
    path.unlink()
    if validate:
        check = run(validate, check=False)
        if check.returncode != 0:
            write_file(path, previous)
            raise NodeError("config_invalid", f"removing {path} broke the configuration; restored it")
    return True


# --- services: systemd on production nodes, direct daemons elsewhere ---------

def has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def pid_alive(pid_file: str) -> int | None:
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def wait_for(check, timeout: float = 15.0, what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise NodeError("service_failed", f"{what} did not come up within {int(timeout)} s", retryable=True)
