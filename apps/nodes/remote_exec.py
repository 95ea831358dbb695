"""Running node-side programs from the panel: make sure the node has the
current bundle, send the parameters as JSON on stdin, stream the program's
STEP/INFO lines into the job log, and turn its ERROR line or any SSH failure
into a registered job error. Only the program's last line can be its
outcome (see ProgramOutput)."""

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


# Debian's interpreter by its path, the one node_provision gives its packages (python3-cryptography,
# python3-systemd): not whatever "python3" the login's PATH finds first (a version manager's shim adds
# a shell and an interpreter lookup to every program start, and lacks those packages).
NODE_PYTHON = "/usr/bin/python3"


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


class ProgramOutput:
    """The stdout lines of one node program, read by the protocol in
    apps/nodes/remote/nodelib.py: STEP and INFO go to the job log; the
    outcome (RESULT or ERROR) counts only as the very last line. A RESULT or
    ERROR line followed by anything else is logged as plain output and means
    nothing, so text that made it onto a line of its own cannot forge one."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        self.final: tuple[str, str] | None = None

    def line(self, line: str) -> None:
        if self.final is not None:
            kind, rest = self.final
            self.final = None
            self._log(f"(ignored, not the last line) {kind} {rest}", LogLevel.OUTPUT)
        kind, _, rest = line.partition(" ")
        if kind in ("RESULT", "ERROR"):
            self.final = (kind, rest)
        elif kind in ("STEP", "INFO"):
            self._log(rest, LogLevel.STEP if kind == "STEP" else LogLevel.INFO)
        else:
            self._log(line, LogLevel.OUTPUT)

    def _log(self, text: str, level) -> None:
        if self.ctx is not None:
            self.ctx.log(text, level)

    def error(self) -> JobError | None:
        if self.final is None or self.final[0] != "ERROR":
            return None
        code, _, tail = self.final[1].partition(" ")
        retryable, _, message = tail.partition(" ")
        return _node_error(code, retryable == "1", message)

    def result(self, program: str) -> dict:
        if self.final is None or self.final[0] != "RESULT":
            raise JobError("remote_step_failed", f"{program} ended without a result line.")
        try:
            result = json.loads(self.final[1] or "{}")
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise JobError("remote_step_failed", f"{program} ended with a result that is not a JSON object.")
        return result


def run_program(node, program: str, params: dict, *, ctx=None, timeout: float = 900,
                connect_timeout: float = ssh.CONNECT_TIMEOUT) -> dict:
    """Run ``program`` on ``node`` and return its RESULT; raise JobError on failure.

    ``timeout`` bounds the whole call, connecting included, when it is the smaller.
    With a job's ``ctx``, the run's claim is confirmed just before the program
    starts and the program holds the job's node locks (``ctx.fence()``).
    """
    deadline = time.monotonic() + timeout
    output = ProgramOutput(ctx)
    if ctx is not None:
        # A job's program carries its fence: the node runs one program per scope and no stale attempt.
        params = {**params, "fence": ctx.fence()}
    try:
        connection = open_connection(node, min(connect_timeout, timeout))
        ensure_bundle(connection)
        if ctx is not None:
            ctx.confirm_claim()  # the last moment this run can still step back
        connection.run(
            [NODE_PYTHON, bundle.program_path(program)],
            stdin=json.dumps(params),
            timeout=max(0.5, deadline - time.monotonic()),
            on_line=output.line,
            stop_event=ctx.stop_event if ctx is not None else None,
        )
    except ssh.RemoteStepFailed as exc:
        error = output.error()
        if error is not None:
            raise error from None
        raise as_job_error(exc) from None
    except ssh.RemoteStopped:
        if ctx is not None:
            ctx.checkpoint()  # raises the cancel or timeout that stopped us
        raise JobError("remote_step_failed", f"{program} was stopped on the node.") from None
    except ssh.SshError as exc:
        raise as_job_error(exc) from None
    error = output.error()
    if error is not None:
        raise error
    return output.result(program)


def _node_error(code: str, retryable: bool, message: str) -> JobError:
    if code not in JOB_ERROR_CODES:
        logger.warning("node reported unregistered error code %s", code)
        return JobError("remote_step_failed", f"{code}: {message}", retryable=retryable)
    return JobError(code, message, retryable=retryable)
