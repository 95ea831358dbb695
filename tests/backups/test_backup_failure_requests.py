"""Why a failed backup failed, recorded on the Backup wherever it fails
without reaching the node: its job cancelled before it ran (it used to stay
``pending`` for good), refused at its claim, its worker dead, out of time, a
deletion's final backups never taken; shown by ``GET /api/backups/{id}``,
``GET /api/backups`` and the admin's backups page (the environment's list
keeps the reference's closed shape). The end-to-end failure on the node is
in test_backup_failure_e2e.py."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.backups import services
from apps.backups.models import Backup, BackupRepository
from apps.core.choices import LifecycleStatus
from apps.jobs import services as job_services
from apps.jobs.models import Job
from tests.backups.conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {"id", "environment_id", "backup_scope", "status", "storage_type", "storage_path",
                   "retention_until", "checksum", "size_bytes", "created_at", "completed_at"}


def queue_backup(api_client, environment, scope="db") -> tuple[Job, Backup]:
    response = api_client.post(f"/api/environments/{environment.pk}/backups", {"backup_scope": scope}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    return job, Backup.objects.get(pk=job.payload["backup_id"])


def test_a_backup_whose_job_is_cancelled_before_it_ran_fails_with_that_reason(
        api_client, site_with_production, backup_storage):
    _, production = site_with_production
    job, backup = queue_backup(api_client, production)
    assert api_client.post(f"/api/jobs/{job.pk}/cancel").status_code == 200
    backup.refresh_from_db()
    assert backup.status == "failed"
    assert backup.error_code == "job_cancelled"
    assert backup.error_message == f"not taken: backup_create {job.pk} was cancelled by an operator before it ran."

    detail = api_client.get(f"/api/backups/{backup.pk}")
    assert detail.status_code == 200, detail.content
    body = detail.json()
    assert (body["status"], body["error_code"], body["error_message"]) == ("failed", "job_cancelled",
                                                                            backup.error_message)
    assert body["reason"] == "manual" and body["site_id"] == str(production.site_id) and body["job_id"] is None

    listed = api_client.get("/api/backups", {"environment": str(production.pk), "status": "failed"}).json()
    assert [(item["id"], item["error_code"]) for item in listed] == [(str(backup.pk), "job_cancelled")]
    assert api_client.get("/api/backups", {"status": "completed"}).json() == []
    # The environment's list is the reference's closed shape: no fields beyond it.
    environment_list = api_client.get(f"/api/environments/{production.pk}/backups").json()
    assert environment_list[0]["status"] == "failed" and set(environment_list[0]) == CONTRACT_FIELDS


def test_a_backup_refused_at_its_claim_fails_with_the_claims_reason(api_client, site_with_production,
                                                                     backup_storage):
    _, production = site_with_production
    job, backup = queue_backup(api_client, production)
    type(production).objects.filter(pk=production.pk).update(status=LifecycleStatus.FAILED)
    assert job_services.claim_job(job.pk) is None  # what the worker's run_job does first
    job.refresh_from_db()
    backup.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "resource_failed")
    assert (backup.status, backup.error_code) == ("failed", "resource_failed")
    assert backup.error_message.startswith(f"not taken: backup_create {job.pk}: Environment ")


def claimed_and_taking(api_client, environment) -> tuple[Job, Backup]:
    """A backup_create claimed by this process and its backup marked running,
    as the handler does before its node program starts; then its worker
    "dies" (no heartbeat since long ago)."""
    job, backup = queue_backup(api_client, environment)
    claim = job_services.claim_job(job.pk)
    assert claim is not None
    services.mark_running(backup, claim.job)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    return job, backup


def test_a_backup_whose_worker_died_fails_and_is_taken_again(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    job, backup = claimed_and_taking(api_client, production)
    assert [found.pk for found in job_services.recover_lost_jobs()] == [job.pk]
    job.refresh_from_db()
    backup.refresh_from_db()
    assert (job.status, job.error_code) == ("queued", "worker_lost")
    assert (backup.status, backup.error_code, backup.job_id) == ("failed", "worker_lost", job.pk)
    assert backup.error_message.endswith("stopped responding; running the job again.")
    # The next run takes it again: the earlier failure is forgotten.
    services.mark_running(backup, job)
    assert (backup.status, backup.error_code, backup.error_message) == ("running", None, None)


def test_a_backup_whose_worker_died_for_the_last_time_fails(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    job, backup = claimed_and_taking(api_client, production)
    Job.objects.filter(pk=job.pk).update(attempt_count=job.max_attempts)
    job_services.recover_lost_jobs()
    backup.refresh_from_db()
    assert (Job.objects.get(pk=job.pk).status, backup.status, backup.error_code) == ("failed", "failed",
                                                                                      "worker_lost")
    assert "died and no retries are left" in backup.error_message


def test_a_backup_whose_job_ran_out_of_time_fails(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    job, backup = claimed_and_taking(api_client, production)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now(),
                                         started_at=timezone.now() - timedelta(seconds=job.timeout_seconds + 3600))
    assert [found.pk for found in job_services.fail_overdue_jobs()] == [job.pk]
    backup.refresh_from_db()
    assert (backup.status, backup.error_code) == ("failed", "job_timeout")
    assert backup.error_message == f"backup_create {job.pk}: Stopped after running longer than {job.timeout_seconds} s."


def test_a_completed_backup_is_never_touched_by_its_jobs_ending(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    job, backup = claimed_and_taking(api_client, production)
    Backup.objects.filter(pk=backup.pk).update(status="completed")
    job_services.recover_lost_jobs()
    backup.refresh_from_db()
    assert (backup.status, backup.error_code, backup.error_message) == ("completed", None, None)


def test_final_backups_of_a_cancelled_site_deletion_fail_with_its_reason(api_client, site_with_production,
                                                                          backup_storage):
    site, production = site_with_production
    response = api_client.delete(f"/api/sites/{site.pk}")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    final = Backup.objects.get(pk=job.payload[services.FINAL_BACKUPS][str(production.pk)])
    assert final.status == "pending"
    assert api_client.post(f"/api/jobs/{job.pk}/cancel").status_code == 200
    final.refresh_from_db()
    assert (final.status, final.error_code, final.reason) == ("failed", "job_cancelled", "final")
    assert "site_delete" in final.error_message and "before it ran" in final.error_message


def test_a_pending_backup_of_a_deleted_environment_fails_with_that_reason(site_with_production, backup_storage):
    _, production = site_with_production
    config = services.storage.configured_storage()
    backup = services.new_backup(production, "full", "scheduled", config)
    services.forget_environment_backups([production.pk])
    backup.refresh_from_db()
    assert (backup.status, backup.error_code) == ("failed", "backup_environment_deleted")
    assert backup.error_message == services.ENVIRONMENT_DELETED


def test_a_failure_message_is_one_short_line_without_secrets(site_with_production, backup_storage):
    site, production = site_with_production
    production.db_password = "db-password-of-production-0123"
    production.save(update_fields=["db_password"])
    config = services.storage.configured_storage()
    password = services.storage.repository_password(site)
    assert BackupRepository.objects.filter(site_id=site.pk).exists()
    backup = services.new_backup(production, "db", "manual", config)
    services.mark_failed(backup, "backup_storage_failed",
                         f"restic said:\n  AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY}\n key {ACCESS_KEY_ID}, "
                         f"password {password}, db {production.db_password}\n" + "x" * 2000)
    backup.refresh_from_db()
    message = backup.error_message
    assert "\n" not in message and len(message) <= 500 and message.endswith("…")
    assert message.startswith("restic said: AWS_SECRET_ACCESS_KEY=[redacted] key [redacted], password [redacted], "
                              "db [redacted] xxx")
    for secret in (SECRET_ACCESS_KEY, ACCESS_KEY_ID, password, production.db_password):
        assert secret not in message
    # A code nobody registered is not recorded as such.
    services.mark_failed(backup, "made_up_code", "why")
    assert backup.error_code == "internal_error"


@pytest.fixture
def admin_client(db):
    from apps.accounts.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    return client


def test_the_admin_shows_why_a_backup_failed(admin_client, api_client, site_with_production, backup_storage):
    _, production = site_with_production
    job, backup = queue_backup(api_client, production)
    api_client.post(f"/api/jobs/{job.pk}/cancel")
    backup.refresh_from_db()
    # The environment's backups page (its "backups" link): the status with why it failed.
    page = admin_client.get(reverse("admin:backups_backup_changelist"), {"environment": str(production.pk)})
    assert page.status_code == 200
    text = page.content.decode()
    assert "<code>job_cancelled</code>" in text and f"backup_create {job.pk} was cancelled by an operator" in text
    detail = admin_client.get(reverse("admin:backups_backup_change", args=(backup.pk,))).content.decode()
    assert "job_cancelled" in detail and "before it ran" in detail
    filtered = admin_client.get(reverse("admin:backups_backup_changelist"), {"error_code": "job_cancelled"})
    assert reverse("admin:backups_backup_change", args=(backup.pk,)) in filtered.content.decode()
    other = admin_client.get(reverse("admin:backups_backup_changelist"), {"error_code": "job_timeout"})
    assert reverse("admin:backups_backup_change", args=(backup.pk,)) not in other.content.decode()
