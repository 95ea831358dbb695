"""control_plane_domain in GET/PATCH /api/settings: checked as a custom
domain's hostname, a change queues panel_https on the local node (the node's
part: tests/domains/test_panel_https_e2e.py), PRESSLUFT_CONTROL_PLANE_DOMAIN
wins."""

import pytest

from apps.audit.models import AuditEntry
from apps.core.models import PanelSettings


@pytest.mark.parametrize("value", [
    "*.example.com", "192.0.2.7", "[2001:db8::1]", "panel.example.com:8443", "https://panel.example.com",
    "panel.example.com/admin", "panel", "-panel.example.com", "panel..example.com", "x" * 64 + ".example.com",
    "bad host; rm -rf /",
])
def test_a_bad_control_plane_domain_is_400_and_changes_nothing(api_client, db, value):
    response = api_client.patch("/api/settings", {"control_plane_domain": value, "acme_email": "ok@example.com"},
                                format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "bad_request" and body["message"]
    assert list(body["details"]["fields"]) == ["control_plane_domain"]
    row = PanelSettings.load()
    assert (row.control_plane_domain, row.acme_email) == ("", "")
    assert AuditEntry.objects.get(action="panelsettings.update").result == "failed"


def test_control_plane_domain_is_stored_in_ascii_and_without_a_local_node_left_to_a_proxy(api_client, db):
    from apps.jobs.models import Job

    response = api_client.patch("/api/settings", {"control_plane_domain": " Bücher.Example. "}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["control_plane_domain"] == "xn--bcher-kva.example"
    # No local node here: no job, and the answer says the domain is served by a proxy of the operator's own.
    assert body["control_plane_https"]["state"] == "not_managed" and body["control_plane_https"]["job_id"] is None
    assert not Job.objects.filter(job_type="panel_https").exists()


def test_control_plane_domain_queues_panel_https_on_the_local_node_once(api_client, db):
    from apps.jobs.models import Job
    from apps.nodes.factories import NodeFactory

    node = NodeFactory(is_local=True, status="active")
    first = api_client.patch("/api/settings", {"control_plane_domain": "panel.example.com"}, format="json").json()
    assert first["control_plane_https"]["state"] == "pending"
    job = Job.objects.get(job_type="panel_https")
    assert (job.node_id, job.status, str(job.pk)) == (node.pk, "queued", first["control_plane_https"]["job_id"])
    # Still queued: it reads the domain when it runs, so a second change needs no second job.
    api_client.patch("/api/settings", {"control_plane_domain": "admin.example.com"}, format="json")
    assert Job.objects.filter(job_type="panel_https").count() == 1
    # An unchanged value queues nothing.
    Job.objects.update(status="succeeded", result={"hostname": "admin.example.com", "expires_at": None})
    api_client.patch("/api/settings", {"control_plane_domain": "admin.example.com"}, format="json")
    assert Job.objects.filter(job_type="panel_https").count() == 1
    assert api_client.get("/api/settings").json()["control_plane_https"]["state"] == "active"
    # After a renewal, the expiry node health reports.
    node.health = {"certificates": {"certificates": {"admin.example.com": "2027-03-01T00:00:00+00:00"}}}
    node.save()
    assert api_client.get("/api/settings").json()["control_plane_https"]["expires_at"] == "2027-03-01T00:00:00+00:00"


def test_the_environment_variable_wins_for_the_control_plane_domain(api_client, db, settings):
    from apps.domains import panel_https
    from apps.jobs.models import Job
    from apps.nodes.factories import NodeFactory
    from pressluft.allowed_hosts import control_plane_domain

    NodeFactory(is_local=True, status="active")
    settings.CONTROL_PLANE_DOMAIN_FROM_ENVIRONMENT = "Panel.Example.NET"
    try:
        response = api_client.patch("/api/settings", {"control_plane_domain": "other.example.com"}, format="json")
        assert response.status_code == 200
        assert response.json()["control_plane_https"]["hostname"] == "panel.example.net"
        assert panel_https.effective_domain() == "panel.example.net"
        assert control_plane_domain.get() == "panel.example.net"
        assert not Job.objects.filter(job_type="panel_https").exists()  # nothing changes for the panel
    finally:
        settings.CONTROL_PLANE_DOMAIN_FROM_ENVIRONMENT = ""
        control_plane_domain.forget()
