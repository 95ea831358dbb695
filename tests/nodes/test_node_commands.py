"""The node management commands, against the real local node."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.nodes.models import Node

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_node_public_key_prints_the_panel_key(panel_key):
    out, _ = run("node_public_key")
    assert out.strip() == panel_key
    assert out.startswith("ssh-ed25519 ")


def test_register_and_provision_with_wait(panel_key, node_sshd):
    out, err = run("register_node", "cli-node", "127.0.0.1", "--port", str(node_sshd.port), "--local")
    node = Node.objects.get(name="cli-node")
    assert out.strip() == str(node.pk)
    assert "pinned" in err and node.is_local and node.public_ipv4 == "127.0.0.1"

    out, err = run("provision_node", "cli-node", "--wait", "--no-firewall", "--listen-address", "127.0.0.1")
    job = Job.objects.get(pk=out.strip())
    assert job.status == "succeeded"
    assert job.payload == {"apply_firewall": False, "listen_address": "127.0.0.1"}
    assert "[step] packages" in err and "is provisioned" in err
    node.refresh_from_db()
    assert node.status == "active"
    assert AuditEntry.objects.filter(action="node.register", result="succeeded").exists()
    assert AuditEntry.objects.filter(action="node.provision", job=job, result="completed").exists()


def test_provision_node_without_wait_only_queues(panel_key, node_sshd):
    run("register_node", "queued-node", "127.0.0.1", "--port", str(node_sshd.port))
    out, err = run("provision_node", "queued-node", "--no-firewall")
    assert Job.objects.get(pk=out.strip()).status == "queued"
    assert "runworker" in err


def test_register_node_errors_are_plain(panel_key, node_sshd):
    with pytest.raises(CommandError, match="--public-ip is required"):
        run("register_node", "named", "node.example.test")
    with pytest.raises(CommandError, match="name"):
        run("register_node", "Not A Name", "127.0.0.1", "--port", str(node_sshd.port))
    with pytest.raises(CommandError, match="no node named"):
        run("provision_node", "missing")
    with pytest.raises(CommandError, match="listen-address"):
        run("register_node", "ok-node", "127.0.0.1", "--port", str(node_sshd.port))
        run("provision_node", "ok-node", "--listen-address", "localhost")
