"""Running node-side programs from the panel: make sure the node has the
current bundle, send the parameters as JSON on stdin, stream the program's
STEP/INFO lines into the job log, and turn its ERROR line or any SSH failure
into a registered job error."""

from __future__ import annotations

import json
import logging
import threading
import time

from apps.jobs.choices import LogLevel
from apps.jobs.errors import JOB_ERROR_CODES, JobError
from apps.nodes import bundle, ssh
from apps.nodes.connections import open_connection

logger = logging.getLogger(__name__)

_installed_versions: dict[str, str] = {}
_install_lock = threading.Lock()


def ensure_bundle(connection: ssh.Connection) -> None:
    key = connection.target.key
    if _installed_versions.get(key) == bundle.version():
        return
    with _install_lock:
        current = connection.run(["cat", bundle.VERSION_FILE], check=False).stdout.strip()
        if current != bundle.version():
            connection.run(["mkdir", "-p", bundle.REMOTE_DIR])
            for name, content in bundle.files().items():
                connection.upload(f"{bundle.REMOTE_DIR}/{name}", content, 0o755 if name.endswith((".py", ".sh")) else 0o644)
            connection.upload(bundle.VERSION_FILE, bundle.version() + "\n")
        _installed_versions[key] = bundle.version()


def as_job_error(exc: ssh.SshError) -> JobError:
    return JobError(exc.code, exc.message, retryable=exc.retryable)


def run_program(node, program: str, params: dict, *, ctx=None, timeout: float = 900,
                connect_timeout: float = ssh.CONNECT_TIMEOUT) -> dict:
    """Run ``program`` on ``node`` and return its RESULT; raise JobError on failure.

    ``timeout`` bounds the whole call, connecting included, when it is the smaller.
    """
    deadline = time.monotonic() + timeout
    result: dict = {}
    error: list[tuple[str, bool, str]] = []

    def on_line(line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "RESULT":
            result.update(json.loads(rest or "{}"))
        elif kind == "ERROR":
            code, _, tail = rest.partition(" ")
            retryable, _, message = tail.partition(" ")
            error.append((code, retryable == "1", message))
        elif ctx is not None:
            level = {"STEP": LogLevel.STEP, "INFO": LogLevel.INFO}.get(kind, LogLevel.OUTPUT)
            ctx.log(rest if kind in ("STEP", "INFO") else line, level)

    try:
        connection = open_connection(node, min(connect_timeout, timeout))
        ensure_bundle(connection)
        connection.run(
            ["python3", bundle.program_path(program)],
            stdin=json.dumps(params),
            timeout=max(0.5, deadline - time.monotonic()),
            on_line=on_line,
            stop_event=ctx.stop_event if ctx is not None else None,
        )
    except ssh.RemoteStepFailed as exc:
        if error:
            raise _node_error(*error[-1]) from None
        raise as_job_error(exc) from None
    except ssh.RemoteStopped:
        if ctx is not None:
            ctx.checkpoint()  # raises the cancel or timeout that stopped us
        raise JobError("remote_step_failed", f"{program} was stopped on the node.") from None
    except ssh.SshError as exc:
        raise as_job_error(exc) from None
    if error:
        raise _node_error(*error[-1])
    return result


def _node_error(code: str, retryable: bool, message: str) -> JobError:
    if code not in JOB_ERROR_CODES:
        logger.warning("node reported unregistered error code %s", code)
        return JobError("remote_step_failed", f"{code}: {message}", retryable=retryable)
    return JobError(code, message, retryable=retryable)
