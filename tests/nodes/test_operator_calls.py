"""run_now: a node program while an operator waits, its failure already the
API error (apps/nodes/operator_calls.py), against real sshds on loopback."""

import pytest

from apps.nodes.factories import NodeFactory
from apps.nodes.operator_calls import NodeCallFailed, run_now
from tests.nodes.support import free_port, new_host_key

pytestmark = pytest.mark.django_db

# Parameters the WordPress helper refuses on the node (no such environment, no usable limit).
BAD_HELPER_PARAMS = {"system_name": "pressluft-no-such-env", "root": "/nonexistent", "url": "http://none.test",
                     "limit": "all"}


def _public_key(sshd) -> str:
    return " ".join(sshd.host_key.with_suffix(".pub").read_text().split()[:2])


def _refusal(node, program="node_health.py", params=None, **kind) -> NodeCallFailed:
    with pytest.raises(NodeCallFailed) as failed:
        run_now(node, program, params or {}, timeout=60, **kind)
    return failed.value


def test_a_closed_port_is_node_unreachable(panel_key, tmp_path):
    node = NodeFactory(name="gone", ssh_port=free_port(),
                       host_key=" ".join(new_host_key(tmp_path / "key").with_suffix(".pub").read_text().split()[:2]))

    error = _refusal(node, task="health check")
    assert (error.status, error.code, error.node_error.code) == (502, "node_unreachable", "node_unreachable")
    assert "127.0.0.1" in error.message

    error = _refusal(node, "wp_held_mail.py", BAD_HELPER_PARAMS, wordpress_action="list the held mail")
    assert (error.status, error.code) == (502, "node_unreachable")
    assert error.message.startswith("Could not reach node gone: ")


def test_a_changed_host_key_is_host_key_mismatch(panel_key, extra_sshd):
    sshd = extra_sshd()
    sshd.authorize(panel_key)
    pinned = _public_key(sshd)
    sshd.stop()
    sshd.host_key = new_host_key(sshd.host_key.with_name("host_ed25519_new"))
    sshd.write_config()
    sshd.start()
    node = NodeFactory(name="rekeyed", ssh_port=sshd.port, host_key=pinned)

    error = _refusal(node, task="health check")
    assert (error.status, error.code) == (502, "host_key_mismatch")
    assert "SHA256:" in error.message

    # For a WordPress helper every SSH failure is "could not reach the node".
    error = _refusal(node, "wp_held_mail.py", BAD_HELPER_PARAMS, wordpress_action="list the held mail")
    assert (error.status, error.code, error.node_error.code) == (502, "node_unreachable", "host_key_mismatch")
    assert error.message.startswith("Could not reach node rekeyed: ")


def test_a_key_the_node_does_not_accept_is_ssh_auth_failed(panel_key, extra_sshd):
    sshd = extra_sshd()  # its authorized_keys file is empty
    node = NodeFactory(name="locked", ssh_port=sshd.port, host_key=_public_key(sshd))

    error = _refusal(node, task="health check")
    assert (error.status, error.code) == (502, "ssh_auth_failed")


def test_a_program_failing_on_the_node(panel_key, extra_sshd, caplog):
    sshd = extra_sshd()
    sshd.authorize(panel_key)
    node = NodeFactory(name="reachable", ssh_port=sshd.port, host_key=_public_key(sshd))

    # A WordPress helper's own error is wp_cli_error, with its message.
    error = _refusal(node, "wp_held_mail.py", BAD_HELPER_PARAMS, wordpress_action="list the held mail")
    assert (error.status, error.code) == (502, "wp_cli_error"), (error.node_error.code, error.node_error.message)
    assert error.message.startswith("WordPress could not list the held mail: ")
    assert error.node_error.code not in {"node_unreachable", "host_key_mismatch", "ssh_auth_failed", "remote_timeout"}

    # A panel program's: a pointer to the server log, where the node's message goes.
    error = _refusal(node, "wp_held_mail.py", BAD_HELPER_PARAMS, task="held mail check")
    assert (error.status, error.code) == (502, "node_unreachable")
    assert error.message == "The held mail check could not run on the node; see the server log."
    assert error.node_error.message in caplog.text


def test_a_call_says_which_kind_of_program_it_runs(panel_key):
    node = NodeFactory(name="unused", ssh_port=free_port(), host_key="ssh-ed25519 AAAA")
    with pytest.raises(TypeError):
        run_now(node, "node_health.py", {}, timeout=1)
    with pytest.raises(TypeError):
        run_now(node, "node_health.py", {}, timeout=1, task="health check", wordpress_action="log in")
