"""End to end on the real local node: a backup that really fails on the node
(the backup storage's endpoint a closed loopback port) records the job's
error code and message on the Backup, the API returns them, the site is
untouched; retried once the storage answers (the real S3 server), the same
backup completes and forgets why it had failed."""

import socket

import pytest

from apps.backups.models import Backup
from apps.core.models import PanelSettings
from apps.jobs import runner
from apps.jobs.models import Job
from tests.backups.conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def point_storage_at(endpoint: str) -> None:
    panel = PanelSettings.load()
    panel.backup_s3_endpoint = endpoint
    panel.save()


def test_a_backup_failing_on_the_node_says_why(api_client, local_node, backup_storage, s3_server):
    site, production = create_site(api_client, "Delta Dairy", "delta")
    try:
        _fails_then_completes(api_client, site, production, s3_server)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}?final_backup=false")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _fails_then_completes(api_client, site, production, s3_server):
    point_storage_at(f"http://127.0.0.1:{closed_port()}")
    response = api_client.post(f"/api/environments/{production.pk}/backups", {"backup_scope": "db"}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    runner.run_job(job_id)
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_code) == ("queued", "backup_storage_failed"), job_log(job_id)  # to be retried
    backup = Backup.objects.get(pk=job.payload["backup_id"])
    assert (backup.status, backup.error_code, backup.job_id) == ("failed", "backup_storage_failed", job.pk)
    # The job's own message, made one line (restic's words about the repository it could not open).
    assert " ".join(job.error_message.split()).startswith(backup.error_message.rstrip("…"))
    assert "repository" in backup.error_message and "\n" not in backup.error_message
    for secret in (SECRET_ACCESS_KEY, ACCESS_KEY_ID, production.db_password):
        assert secret not in backup.error_message

    body = api_client.get(f"/api/backups/{backup.pk}").json()
    assert (body["status"], body["error_code"], body["error_message"], body["job_id"]) == (
        "failed", "backup_storage_failed", backup.error_message, str(job.pk))
    listed = api_client.get("/api/backups", {"environment": str(production.pk), "status": "failed"}).json()
    assert [(item["id"], item["error_code"]) for item in listed] == [(str(backup.pk), "backup_storage_failed")]
    production.refresh_from_db()
    site.refresh_from_db()
    assert (site.status, production.status) == ("active", "active")

    # Its last attempt fails the job: the backup keeps the node's reason.
    Job.objects.filter(pk=job.pk).update(attempt_count=job.max_attempts, run_after=None)
    assert runner.run_job(job_id) == "failed", job_log(job_id)
    backup.refresh_from_db()
    assert (backup.status, backup.error_code) == ("failed", "backup_storage_failed")

    # The storage answers again: the operator retries the job, and the same backup completes.
    point_storage_at(s3_server)
    retried = api_client.post(f"/api/jobs/{job_id}/retry")
    assert retried.status_code in (200, 202), retried.content
    new_job_id = retried.json()["job_id"]
    assert runner.run_job(new_job_id) == "succeeded", job_log(new_job_id)
    backup.refresh_from_db()
    assert (backup.status, backup.error_code, backup.error_message) == ("completed", None, None)
    assert str(backup.job_id) == new_job_id
    body = api_client.get(f"/api/backups/{backup.pk}").json()
    assert (body["status"], body["error_code"], body["error_message"]) == ("completed", None, None)
