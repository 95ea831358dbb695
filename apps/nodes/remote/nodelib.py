"""Shared helpers for the node-side programs (standard library only).

Every node-side program is run by the panel over SSH as
``/usr/bin/python3 /usr/local/lib/pressluft/<program>.py`` with its parameters as one
JSON object on stdin. It reports with lines on stdout:

    STEP <text>        a stage began (shown in the job log)
    INFO <text>        a detail
    RESULT <json>      the program's result (last line)
    ERROR <code> <retryable 0|1> <text>   why it failed (before a non-zero exit)

Every line is exactly one line. Texts often carry what a site, a repository or
a file name chose (WordPress and git errors, paths), so ``clean_text`` writes
line breaks, other control characters, lone surrogates and bidirectional
overrides as visible escapes (``\\n``, ``\\x1b``, ``\\u2028``) and bounds the
length; RESULT is JSON with every such character escaped. No message can
start a line of its own.

The outcome is the program's final line only: RESULT when it exits 0, ERROR
when it exits non-zero. The panel (apps/nodes/remote_exec.py) takes the last
line as the outcome and treats a RESULT or ERROR line that is followed by any
other line as plain output, so a child process that shares stdout cannot
forge one either.

Programs are idempotent: each step checks what is already there.
Commands are argument lists, never shell strings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

LIB_DIR = Path(__file__).resolve().parent


class NodeError(Exception):
    def __init__(self, code: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


_current_step = "start"

# Longest text of one protocol line; more is cut (the job log is no file dump).
MAX_TEXT = 2000
SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Characters that reorder what is displayed (a file name could make a log line read differently).
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _escape(char: str) -> str:
    if char in SHORT_ESCAPES:
        return SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text, limit: int = MAX_TEXT) -> str:
    """``text`` as one printable line of at most ``limit`` characters (plus a
    cut mark): control and line-separating characters escaped."""
    text = str(text)
    cut = len(text) > limit
    out = []
    for char in text[:limit]:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS:
            out.append(_escape(char))
        else:
            out.append(char)
    line = "".join(out)
    if len(line) > limit:
        line, cut = line[:limit], True
    return line + (" [...]" if cut else "")


def _emit(kind: str, text: str) -> None:
    print(f"{kind} {clean_text(text)}", flush=True)


def step(text: str) -> None:
    global _current_step
    _current_step = text
    _emit("STEP", text)


def info(text: str) -> None:
    _emit("INFO", text)


def _fail(code: str, retryable: bool, message: str) -> None:
    if not ERROR_CODE.match(code):
        message, code = f"{code}: {message}", "remote_step_failed"
    _emit("ERROR", f"{code} {int(retryable)} {message}")
    sys.exit(2)


def read_params() -> dict:
    raw = sys.stdin.read()
    return json.loads(raw) if raw.strip() else {}


def main(handler) -> None:
    """Run ``handler(params) -> dict`` with the protocol above, inside the
    job's node locks when the panel sent a ``fence`` (see node_lock.py)."""
    import node_lock

    try:
        params = read_params()
        fence = params.pop("fence", None)
        with node_lock.held(fence) if fence else contextlib.nullcontext():
            result = handler(params)
    except node_lock.Busy as exc:
        _fail("node_busy", True, f"Another program is working here: {exc}.")
    except node_lock.Stale as exc:
        _fail("claim_stale", False, f"Refused to start: {exc}.")
    except node_lock.BadFence as exc:
        _fail("remote_step_failed", False, str(exc))
    except NodeError as exc:
        _fail(exc.code, exc.retryable, exc.message)
    except OSError as exc:
        # A file or directory in the way, a full disk, a permission: say which step and path.
        where = f" ({exc.filename})" if exc.filename else ""
        _fail("remote_step_failed", False, f"{_current_step}: {exc.strerror or exc}{where}")
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.output or "").strip().splitlines()[-3:]
        _fail("remote_step_failed", False, f"{_current_step}: {exc.cmd[0]} exited {exc.returncode}: {' | '.join(tail)}")
    # ensure_ascii: every control or separator character inside a string is a JSON escape.
    print("RESULT " + json.dumps(result or {}, sort_keys=True, ensure_ascii=True), flush=True)


def run(argv: list[str], *, input: str | None = None, check: bool = True, env: dict | None = None,
        timeout: float | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, input=input, capture_output=True, text=True, check=check, env=env, timeout=timeout, cwd=cwd
    )


def run_bounded(argv: list[str], *, input: str | None = None, timeout: float, env: dict | None = None,
                cwd: str | None = None, user: int | None = None, group: int | None = None,
                keep_stdout: int = 1024 * 1024, keep_stderr: int = 64 * 1024) -> subprocess.CompletedProcess:
    """Run a command whose output someone else controls (a site's PHP, a
    repository host): only the last ``keep_*`` bytes of stdout and stderr are
    kept, so a flood of output cannot exhaust memory. With ``user``/``group``
    it runs as that account with no supplementary groups and umask 077. On
    ``timeout`` its whole process group is killed and TimeoutExpired raised.

    The command gets a process group of its own but stays in the program's
    session: when the panel stops the program (``pkill -s`` on its session),
    the command dies with it and cannot outlive the program's node lock."""
    import signal
    import threading

    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, cwd=cwd, user=user, group=group,
        extra_groups=[] if user is not None else None, umask=0o077 if user is not None else -1,
        process_group=0,
    )
    kept = {"stdout": bytearray(), "stderr": bytearray()}

    def drain(stream, name: str, limit: int) -> None:
        buffer = kept[name]
        while chunk := stream.read1(65536):
            buffer += chunk
            if len(buffer) > limit:
                del buffer[: len(buffer) - limit]

    def feed() -> None:
        try:
            process.stdin.write(input.encode())
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    threads = [threading.Thread(target=drain, args=(process.stdout, "stdout", keep_stdout), daemon=True),
               threading.Thread(target=drain, args=(process.stderr, "stderr", keep_stderr), daemon=True)]
    if input is not None:
        threads.append(threading.Thread(target=feed, daemon=True))
    for thread in threads:
        thread.start()

    def kill_group() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group()
        process.wait()
        raise
    finally:
        # A leftover child holding the pipes open must not keep us waiting, nor live on.
        _join_all(threads, 5)
        if any(thread.is_alive() for thread in threads):
            kill_group()
            _join_all(threads, 5)
    return subprocess.CompletedProcess(argv, process.returncode, bytes(kept["stdout"]).decode(errors="replace"),
                                       bytes(kept["stderr"]).decode(errors="replace"))


def _join_all(threads: list, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


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
    Holds the node's configuration lock (node_lock.shared_config) throughout.
    """
    import node_lock

    path = Path(path)
    with node_lock.shared_config():
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
    import node_lock

    path = Path(path)
    with node_lock.shared_config():
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
