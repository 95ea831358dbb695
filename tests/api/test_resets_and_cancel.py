"""POST reset and cancel: state rules, validation and the audit trail."""

from apps.audit.models import AuditEntry
from apps.jobs.factories import JobFactory
from apps.sites.factories import SiteFactory


def test_failed_site_resets_to_active_and_bumps_state_version(api_client, db):
    site = SiteFactory(status="failed", status_reason="deploy failed")
    response = api_client.post(f"/api/sites/{site.id}/reset")
    assert response.status_code == 200
    assert response.json() == {"success": True, "status": "active"}
    site.refresh_from_db()
    assert (site.status, site.status_reason, site.state_version) == ("active", "", 2)
    entry = AuditEntry.objects.get(action="site.reset")
    assert (entry.result, entry.resource_type, entry.resource_id, entry.actor) == (
        "succeeded", "site", str(site.id), "admin@example.test"
    )
    assert entry.client_address == "127.0.0.1"


def test_reset_of_an_active_site_is_409_resource_not_failed(api_client, db):
    site = SiteFactory()
    response = api_client.post(f"/api/sites/{site.id}/reset")
    assert response.status_code == 409
    assert response.json()["code"] == "resource_not_failed"
    assert AuditEntry.objects.get(action="site.reset").result == "failed"


def test_reset_is_refused_while_a_job_is_queued_and_changes_nothing(api_client, node):
    site = SiteFactory(status="failed")
    job = JobFactory(site=site, node=node)
    response = api_client.post(f"/api/sites/{site.id}/reset")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "reset_validation_failed"
    assert body["details"]["job_ids"] == [str(job.id)]
    site.refresh_from_db()
    assert (site.status, site.state_version) == ("failed", 1)


def test_reset_of_unknown_site_is_404(api_client, db):
    response = api_client.post("/api/sites/00000000-0000-4000-8000-000000000000/reset")
    assert response.status_code == 404


def test_failed_environment_resets(api_client, site_with_production):
    _, production = site_with_production
    production.status = "failed"
    production.save()
    response = api_client.post(f"/api/environments/{production.id}/reset")
    assert response.json() == {"success": True, "status": "active"}


def test_environment_on_decommissioned_node_cannot_be_reset(api_client, node, site_with_production):
    _, production = site_with_production
    production.status = "failed"
    production.save()
    node.status = "decommissioned"
    node.save()
    response = api_client.post(f"/api/environments/{production.id}/reset")
    assert response.status_code == 409
    assert response.json()["code"] == "reset_validation_failed"
    assert "decommissioned" in response.json()["message"]


def test_cancel_of_a_queued_job_is_immediate(api_client, node):
    job = JobFactory(node=node)
    response = api_client.post(f"/api/jobs/{job.id}/cancel")
    assert response.json() == {"success": True, "status": "cancelled"}
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at is not None


def test_cancel_of_a_running_job_asks_it_to_stop(api_client, node):
    job = JobFactory(node=node, status="running")
    response = api_client.post(f"/api/jobs/{job.id}/cancel")
    assert response.json() == {"success": True, "status": "running"}
    job.refresh_from_db()
    assert job.cancel_requested and job.status == "running"


def test_cancel_of_a_finished_job_is_409(api_client, db):
    job = JobFactory(status="succeeded")
    response = api_client.post(f"/api/jobs/{job.id}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "job_not_cancellable"
    job.refresh_from_db()
    assert job.status == "succeeded" and job.state_version == 1


def test_cancel_of_unknown_job_is_404(api_client, db):
    response = api_client.post("/api/jobs/00000000-0000-4000-8000-000000000000/cancel")
    assert response.status_code == 404
    assert AuditEntry.objects.get(action="job.cancel").result == "failed"
