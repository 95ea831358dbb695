"""Fixtures for tests that need the real local node. tests/nodes uses them
through its conftest; another test package gets them with
``from tests.nodes.fixtures import *  # noqa: F401,F403`` in its conftest.py."""

import pytest

from tests.nodes.support import NodeSshd, Sshd, authorize, job_log, node_sshd_from_environment

__all__ = [
    "node_sshd", "firewall_never_loaded", "fresh_ssh_connections", "panel_key", "extra_sshd", "local_node",
    "provision", "PROVISION_OPTIONS",
]


@pytest.fixture(scope="session")
def node_sshd(tmp_path_factory):
    """The sshd the panel reaches this machine through (scripts/test's, or our own)."""
    found = node_sshd_from_environment()
    if found is not None:
        yield found
        return
    sshd = Sshd.create(tmp_path_factory.mktemp("node-sshd")).start()
    try:
        yield NodeSshd(sshd.port, sshd.authorized_keys)
    finally:
        sshd.stop()


@pytest.fixture(autouse=True)
def firewall_never_loaded(settings):
    # The rules would drop this machine's non-loopback traffic; tests only
    # inspect the rules file. Every test passes apply_firewall false as well.
    settings.NODE_APPLY_FIREWALL = False


@pytest.fixture(autouse=True)
def fresh_ssh_connections():
    from apps.nodes import ssh

    ssh.close_all()
    yield
    ssh.close_all()


@pytest.fixture
def panel_key(db, node_sshd):
    from apps.nodes import keys

    key = keys.public_key()
    authorize(node_sshd.authorized_keys, key)
    return key


@pytest.fixture
def extra_sshd(tmp_path):
    """extra_sshd() -> a started Sshd of this test's own; stopped at its end."""
    started = []

    def start():
        sshd = Sshd.create(tmp_path / f"sshd-{len(started)}").start()
        started.append(sshd)
        return sshd

    yield start
    for sshd in started:
        sshd.stop()


PROVISION_OPTIONS = {"apply_firewall": False, "listen_address": "127.0.0.1"}


def provision(api_client, node_id) -> str:
    """Queue node_provision through the API and run it here; returns the job id."""
    from apps.jobs import runner

    response = api_client.post(f"/api/nodes/{node_id}/provision", PROVISION_OPTIONS, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    runner.run_job(job_id)
    return job_id


@pytest.fixture
def local_node(api_client, node_sshd, panel_key):
    """This machine registered and provisioned through the API, as the local node."""
    from apps.jobs.models import Job
    from apps.nodes.models import Node

    response = api_client.post(
        "/api/nodes",
        {"name": "local", "hostname": "127.0.0.1", "ssh_port": node_sshd.port, "public_ipv4": "127.0.0.1",
         "is_local": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = provision(api_client, response.json()["id"])
    assert Job.objects.get(pk=job_id).status == "succeeded", job_log(job_id)
    return Node.objects.get(pk=response.json()["id"])
