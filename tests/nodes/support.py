"""Test sshds on loopback, and small helpers for the node tests.

``scripts/test`` starts the sshd the panel manages this machine through and
exports where it is (PRESSLUFT_TEST_SSH_PORT, PRESSLUFT_TEST_AUTHORIZED_KEYS,
PRESSLUFT_TEST_SSHD_CONFIG); without those, ``node_sshd()`` starts one
itself, so ``pytest tests/nodes`` also works by hand. Other tests start
short-lived sshds of their own to stop, or to give a new host key.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answers on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def new_host_key(path: Path) -> Path:
    for stale in (path, path.with_suffix(".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pressluft-test", "-f", str(path)], check=True)
    return path


@dataclass
class Sshd:
    """An sshd in the foreground (-D), so stopping it is killing one process."""

    directory: Path
    port: int
    authorized_keys: Path
    host_key: Path
    process: subprocess.Popen | None = None

    @classmethod
    def create(cls, directory: Path, port: int | None = None) -> "Sshd":
        directory.mkdir(parents=True, exist_ok=True)
        authorized_keys = directory / "authorized_keys"
        authorized_keys.touch(mode=0o600)
        sshd = cls(directory, port or free_port(), authorized_keys, new_host_key(directory / "host_ed25519"))
        sshd.write_config()
        return sshd

    @property
    def config(self) -> Path:
        return self.directory / "sshd_config"

    def write_config(self) -> None:
        # The same settings as scripts/lib/node.sh (StrictModes off: the files are under /tmp).
        self.config.write_text(
            f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {self.host_key}\n"
            f"PidFile {self.directory / 'sshd.pid'}\nAuthorizedKeysFile {self.authorized_keys}\n"
            "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )

    def start(self) -> "Sshd":
        Path("/run/sshd").mkdir(exist_ok=True)
        log = open(self.directory / "sshd.log", "ab")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        log.close()
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        # sshd -D gives up the port at once, but wait so a restart can bind it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                return

    def authorize(self, public_key: str) -> None:
        authorize(self.authorized_keys, public_key)


def authorize(authorized_keys: Path, public_key: str) -> None:
    """Add the panel's key (each test database makes a new one) once."""
    lines = authorized_keys.read_text().splitlines() if authorized_keys.exists() else []
    if public_key.strip() not in lines:
        with open(authorized_keys, "a") as handle:
            handle.write(public_key.strip() + "\n")


@dataclass(frozen=True)
class NodeSshd:
    """Where the panel reaches this machine as its local node."""

    port: int
    authorized_keys: Path


def node_sshd_from_environment() -> NodeSshd | None:
    port = os.environ.get("PRESSLUFT_TEST_SSH_PORT")
    keys = os.environ.get("PRESSLUFT_TEST_AUTHORIZED_KEYS")
    if port and keys:
        return NodeSshd(int(port), Path(keys))
    return None


def http_get(host: str, path: str = "/", port: int = 80):
    """(status, headers) from Nginx on loopback for this Host, or None when
    the server closed the connection without answering (Nginx's 444)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        try:
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        response.read()
        return response.status, {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()


def job_log(job_id) -> str:
    from apps.jobs.models import Job

    job = Job.objects.get(pk=job_id)
    lines = "\n".join(f"[{line.level}] {line.message}" for line in job.log_lines.order_by("seq"))
    return f"{job.status} {job.error_code}: {job.error_message}\n{lines}"
