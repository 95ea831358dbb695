"""The SSH layer against a real sshd on loopback: reuse, streaming, data on
stdin, refusal of unsafe arguments, atomic uploads, and remote processes
killed on a stop request or a deadline."""

import subprocess
import threading
import time
import uuid

import pytest

from apps.nodes import keys, ssh


@pytest.fixture
def target(panel_key, node_sshd):
    probe = ssh.Connection(
        ssh.Target("probe", "127.0.0.1", node_sshd.port, "root", ""), keys.private_key()
    ).open()
    probe.close()
    return ssh.Target(f"t-{uuid.uuid4()}", "127.0.0.1", node_sshd.port, "root", probe.server_host_key)


def remote_processes(marker: str) -> str:
    return subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout


def test_connections_are_reused(target):
    first = ssh.connect(target, keys.private_key())
    again = ssh.connect(target, keys.private_key())
    assert first is again and first.is_active


def test_output_streams_line_by_line_and_stdin_carries_data(target):
    connection = ssh.connect(target, keys.private_key())
    seen = []
    payload = '{"name": "x; rm -rf / $(reboot)"}\n'
    result = connection.run(["cat"], stdin=payload, on_line=seen.append)
    assert seen == [payload.strip()]
    assert result.exit_code == 0


@pytest.mark.parametrize("argument", ["a b", "x;reboot", "$(id)", "`id`", "a|b", "a>b", "'q'", ""])
def test_arguments_that_are_not_plain_words_are_refused(target, argument):
    connection = ssh.connect(target, keys.private_key())
    with pytest.raises(ValueError):
        connection.run(["echo", argument])


def test_a_failing_command_is_a_remote_step_error_with_its_exit_code(target):
    connection = ssh.connect(target, keys.private_key())
    with pytest.raises(ssh.RemoteStepFailed) as error:
        connection.run(["ls", "/no/such/dir"])
    assert error.value.exit_code == 2
    assert not error.value.retryable
    assert "No such file" in error.value.message


def test_a_stop_request_kills_the_remote_process(target):
    connection = ssh.connect(target, keys.private_key())
    marker = f"{time.time_ns() % 10**9}"
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(ssh.RemoteStopped):
        connection.run(["sleep", f"7{marker}"], stop_event=stop)
    assert time.monotonic() - started < 5
    time.sleep(0.3)
    assert f"sleep 7{marker}" not in remote_processes(f"sleep 7{marker}")


def test_a_deadline_kills_the_remote_process_and_is_retryable(target):
    connection = ssh.connect(target, keys.private_key())
    marker = f"{time.time_ns() % 10**9}"
    with pytest.raises(ssh.RemoteTimeout) as error:
        connection.run(["sleep", f"8{marker}"], timeout=0.5)
    assert error.value.retryable and error.value.code == "remote_timeout"
    time.sleep(0.3)
    assert f"sleep 8{marker}" not in remote_processes(f"sleep 8{marker}")


def test_uploads_are_atomic_and_keep_their_mode(target, tmp_path):
    connection = ssh.connect(target, keys.private_key())
    path = tmp_path / "uploaded.conf"
    path.write_text("old")
    connection.upload(str(path), "new content", 0o600)
    assert path.read_text() == "new content"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["uploaded.conf"]  # no temporary left behind


def test_an_unreachable_port_is_a_retryable_error(db):
    from tests.nodes.support import free_port

    target = ssh.Target("gone", "127.0.0.1", free_port(), "root", "")
    with pytest.raises(ssh.NodeUnreachable) as error:
        ssh.connect(target, keys.private_key())
    assert error.value.retryable and error.value.code == "node_unreachable"
