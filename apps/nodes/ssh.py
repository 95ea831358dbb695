"""The one door to the nodes: SSH with paramiko.

- Connections are reused per process (one transport per node).
- The node's host key is pinned: a different key is refused
  (``host_key_mismatch``, never retried) and the connection is not used.
- Commands are fixed program paths and words from our own code; everything
  that came from a user travels as JSON on stdin. ``run`` refuses arguments
  that are not plain words, as a second line of defence.
- Remote output streams line by line to a callback (the job log); a stop
  event (cancel, timeout) or the command deadline kills the remote process
  group, so no orphaned work keeps running on the node.
- Every failure is an ``SshError`` with a registered job error code and a
  flag saying whether trying again may help. Messages never contain secrets
  or raw remote output beyond the last lines of stderr.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import select
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import paramiko

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
SAFE_ARGUMENT = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
PID_MARKER = "__PRESSLUFT_PID__"


class SshError(Exception):
    code = "node_unreachable"
    retryable = True

    def __init__(self, message: str, *, exit_code: int | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        if retryable is not None:
            self.retryable = retryable


class NodeUnreachable(SshError):
    code = "node_unreachable"
    retryable = True


class HostKeyMismatch(SshError):
    code = "host_key_mismatch"
    retryable = False


class SshAuthFailed(SshError):
    code = "ssh_auth_failed"
    retryable = False


class RemoteTimeout(SshError):
    code = "remote_timeout"
    retryable = True


class RemoteStepFailed(SshError):
    code = "remote_step_failed"
    retryable = False


class RemoteStopped(SshError):
    """The stop event was set (cancel or job timeout); the remote process was killed."""

    code = "remote_step_failed"
    retryable = False


@dataclass
class Target:
    """Where and how to reach a node; built from a Node row."""

    key: str  # cache key, usually the node id
    hostname: str
    port: int
    username: str
    pinned_host_key: str  # "ssh-ed25519 AAAA…", or "" to accept and report (registration)


@dataclass
class RemoteResult:
    exit_code: int
    stdout: str
    stderr: str
    lines: list[str] = field(default_factory=list)


def host_key_string(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def fingerprint(host_key: str) -> str:
    """SHA256 fingerprint as ssh-keygen prints it."""
    import hashlib

    blob = base64.b64decode(host_key.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class Connection:
    def __init__(self, target: Target, private_key: paramiko.PKey, connect_timeout: float = CONNECT_TIMEOUT):
        self.target = target
        self.private_key = private_key
        self.connect_timeout = connect_timeout
        self.transport: paramiko.Transport | None = None
        self.server_host_key = ""
        self._lock = threading.Lock()

    # --- connecting ---------------------------------------------------------
    def open(self) -> "Connection":
        target = self.target
        try:
            sock = socket.create_connection((target.hostname, target.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise NodeUnreachable(
                f"Cannot reach {target.hostname}:{target.port} over SSH ({exc.strerror or type(exc).__name__})."
            ) from None
        transport = paramiko.Transport(sock)
        transport.banner_timeout = self.connect_timeout
        transport.handshake_timeout = self.connect_timeout
        if target.pinned_host_key:
            # Ask for the pinned key's type, so a server with several host keys
            # always shows us the one we pinned.
            pinned_type = target.pinned_host_key.split()[0]
            options = transport.get_security_options()
            preferred = [pinned_type] + [t for t in options.key_types if t != pinned_type]
            try:
                options.key_types = preferred
            except ValueError:
                pass
        try:
            transport.start_client(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise NodeUnreachable(f"SSH handshake with {target.hostname}:{target.port} failed ({type(exc).__name__}).") from None
        self.server_host_key = host_key_string(transport.get_remote_server_key())
        if target.pinned_host_key and self.server_host_key != target.pinned_host_key:
            transport.close()
            raise HostKeyMismatch(
                f"The host key of {target.hostname} changed (now {fingerprint(self.server_host_key)}, "
                f"pinned {fingerprint(target.pinned_host_key)}). All work on this node stops until an "
                "operator verifies the new key and re-pins it."
            )
        try:
            transport.auth_publickey(target.username, self.private_key)
        except paramiko.AuthenticationException:
            transport.close()
            raise SshAuthFailed(
                f"{target.hostname} refused the panel's SSH key for user {target.username}; "
                "install the panel's public key in that user's authorized_keys."
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise NodeUnreachable(f"SSH authentication with {target.hostname} failed ({type(exc).__name__}).") from None
        transport.set_keepalive(30)
        self.transport = transport
        return self

    @property
    def is_active(self) -> bool:
        return self.transport is not None and self.transport.is_active()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # --- commands -------------------------------------------------------------
    def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | str | None = None,
        timeout: float = 600,
        on_line: Callable[[str], None] | None = None,
        stop_event: threading.Event | None = None,
        check: bool = True,
    ) -> RemoteResult:
        """Run a fixed command on the node; return its exit code and output.

        stdout is streamed to ``on_line`` line by line as it arrives.
        """
        for arg in argv:
            if not SAFE_ARGUMENT.match(arg):
                raise ValueError(f"refusing unsafe SSH argument {arg!r}: pass data on stdin")
        # The login shell is the session leader; it prints its pid, then execs
        # the command, so that pid names the session to kill on cancel.
        command = f"echo {PID_MARKER}$$; exec {shlex.join(argv)}"
        channel = self._open_channel()
        try:
            channel.exec_command(command)
            if stdin is not None:
                data = stdin.encode() if isinstance(stdin, str) else stdin
                channel.sendall(data)
            channel.shutdown_write()
            return self._collect(channel, argv, timeout, on_line, stop_event, check)
        finally:
            channel.close()

    def _open_channel(self) -> paramiko.Channel:
        if not self.is_active:
            raise NodeUnreachable(f"The SSH connection to {self.target.hostname} is closed.")
        try:
            return self.transport.open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise NodeUnreachable(f"Cannot open an SSH session on {self.target.hostname} ({type(exc).__name__}).") from None

    def _collect(self, channel, argv, timeout, on_line, stop_event, check) -> RemoteResult:
        deadline = time.monotonic() + timeout
        out_buf, err_buf = b"", b""
        stdout_lines: list[str] = []
        remote_pid: int | None = None

        def emit(line: str):
            nonlocal remote_pid
            if remote_pid is None and line.startswith(PID_MARKER):
                try:
                    remote_pid = int(line[len(PID_MARKER):])
                except ValueError:
                    pass
                return
            stdout_lines.append(line)
            if on_line is not None:
                on_line(line)

        while True:
            if stop_event is not None and stop_event.is_set():
                self._kill_session(remote_pid)
                raise RemoteStopped(f"Stopped {argv[-1] if argv else 'command'} on the node.")
            if time.monotonic() > deadline:
                self._kill_session(remote_pid)
                raise RemoteTimeout(f"{' '.join(argv[:2])} did not finish within {int(timeout)} s on the node.")
            readable, _, _ = select.select([channel], [], [], 0.05)
            progressed = False
            while channel.recv_ready():
                out_buf += channel.recv(65536)
                progressed = True
            while channel.recv_stderr_ready():
                err_buf += channel.recv_stderr(65536)
                progressed = True
            while b"\n" in out_buf:
                raw, out_buf = out_buf.split(b"\n", 1)
                emit(raw.decode(errors="replace"))
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            if not progressed and not readable and channel.closed:
                break
        if out_buf:
            emit(out_buf.decode(errors="replace"))
        exit_code = channel.recv_exit_status()
        stderr = err_buf.decode(errors="replace")
        result = RemoteResult(exit_code, "\n".join(stdout_lines), stderr, stdout_lines)
        if check and exit_code != 0:
            tail = " | ".join(line for line in stderr.strip().splitlines()[-3:])
            raise RemoteStepFailed(
                f"{' '.join(argv[:2])} failed on the node (exit {exit_code})" + (f": {tail}" if tail else ""),
                exit_code=exit_code,
            )
        return result

    def _kill_session(self, remote_pid: int | None) -> None:
        if remote_pid is None:
            return
        try:
            channel = self._open_channel()
            channel.exec_command(f"pkill -KILL -s {int(remote_pid)}")
            channel.recv_exit_status()
            channel.close()
        except SshError:
            logger.warning("could not kill remote session %s on %s", remote_pid, self.target.hostname)

    # --- files ----------------------------------------------------------------
    def upload(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write a file atomically: a temporary file beside it, then rename."""
        payload = data.encode() if isinstance(data, str) else data
        self.upload_stream(path, io.BytesIO(payload), mode)

    def upload_stream(self, path: str, stream, mode: int = 0o644) -> None:
        """As upload(), from an open binary file (read in chunks, never whole into memory)."""
        temporary = f"{path}.pressluft-{uuid.uuid4().hex[:8]}"
        if not self.is_active:
            raise NodeUnreachable(f"The SSH connection to {self.target.hostname} is closed.")
        try:
            sftp = paramiko.SFTPClient.from_transport(self.transport)
            try:
                sftp.putfo(stream, temporary, confirm=True)
                sftp.chmod(temporary, mode)
                sftp.posix_rename(temporary, path)
            finally:
                sftp.close()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise NodeUnreachable(f"Uploading {path} to {self.target.hostname} failed ({type(exc).__name__}).") from None


# --- connection cache ----------------------------------------------------------

_cache: dict[str, Connection] = {}
_cache_lock = threading.Lock()


def connect(target: Target, private_key: paramiko.PKey, connect_timeout: float = CONNECT_TIMEOUT) -> Connection:
    """A live connection to the target, reused when one is open with the same pin."""
    with _cache_lock:
        existing = _cache.get(target.key)
        if existing is not None and existing.is_active and existing.target == target:
            return existing
        if existing is not None:
            existing.close()
        connection = Connection(target, private_key, connect_timeout).open()
        _cache[target.key] = connection
        return connection


def forget(key: str) -> None:
    with _cache_lock:
        connection = _cache.pop(key, None)
    if connection is not None:
        connection.close()


def close_all() -> None:
    with _cache_lock:
        connections = list(_cache.values())
        _cache.clear()
    for connection in connections:
        connection.close()
