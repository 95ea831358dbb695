"""Asking for a backup (API, admin, management command) and the storage
settings: refused without storage (409, nothing changes), bad input 400,
queued with storage; the storage keys encrypted at rest and never shown."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.backups import storage
from apps.backups.models import Backup
from apps.core.choices import LifecycleStatus
from apps.core.models import PanelSettings
from apps.jobs.models import Job
from tests.backups.conftest import SECRET_ACCESS_KEY

pytestmark = pytest.mark.django_db


def backups_url(environment) -> str:
    return f"/api/environments/{environment.pk}/backups"


def nothing_queued():
    return not Backup.objects.exists() and not Job.objects.exists()


def test_backup_refused_without_storage(api_client, site_with_production):
    _, production = site_with_production
    response = api_client.post(backups_url(production), {"backup_scope": "full"}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "backup_storage_not_configured"
    assert "PRESSLUFT_BACKUP_S3_" in body["message"] and "Panel settings" in body["message"]
    assert set(body["details"]["missing"]) == {"endpoint", "bucket", "access_key_id", "secret_access_key"}
    assert nothing_queued()
    assert api_client.get(backups_url(production)).json() == []


@pytest.mark.parametrize("body", [
    {"backup_scope": "everything"},
    {"backup_scope": 1},
    {},
    {"backup_scope": "db", "extra": True},
    ["db"],
])
def test_bad_request_is_400_and_changes_nothing(api_client, site_with_production, backup_storage, body):
    _, production = site_with_production
    response = api_client.post(backups_url(production), body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) >= {"code", "message"} and response.json()["code"] == "bad_request"
    assert nothing_queued()


def test_unknown_environment_is_404(api_client, backup_storage):
    response = api_client.post("/api/environments/00000000-0000-4000-8000-000000000000/backups",
                               {"backup_scope": "db"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert nothing_queued()


def test_inactive_environment_is_409(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    type(production).objects.filter(pk=production.pk).update(status=LifecycleStatus.DEPLOYING)
    response = api_client.post(backups_url(production), {"backup_scope": "db"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "environment_not_active"
    assert nothing_queued()


@pytest.mark.parametrize("scope", ["db", "files", "full"])
def test_backup_is_queued_and_listed_pending(api_client, site_with_production, backup_storage, scope):
    site, production = site_with_production
    response = api_client.post(backups_url(production), {"backup_scope": scope}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.job_type == "backup_create" and job.environment_id == production.pk
    backup = Backup.objects.get(pk=job.payload["backup_id"])
    assert (backup.backup_scope, backup.status) == (scope, "pending")
    listed = api_client.get(backups_url(production)).json()
    assert [item["id"] for item in listed] == [str(backup.pk)]
    assert listed[0]["storage_type"] == "s3"
    assert listed[0]["storage_path"] == f"s3://{backup_storage.backup_s3_bucket}/test/backups/sites/{site.pk}"
    # The secret travels nowhere near the API or the job row.
    assert SECRET_ACCESS_KEY not in str(listed) and SECRET_ACCESS_KEY not in str(job.payload)
    entry = AuditEntry.objects.get(action="environment.backup")
    assert entry.job_id == job.pk


def test_environment_variables_win_field_by_field(settings, db):
    panel = PanelSettings.load()
    panel.backup_s3_endpoint = "https://stored.example.com"
    panel.backup_s3_bucket = "stored-bucket"
    panel.save()
    assert storage.configured_storage() is None
    settings.BACKUP_STORAGE_FROM_ENVIRONMENT = {
        "bucket": "env-bucket", "access_key_id": "AKIAENV", "secret_access_key": "env-secret",
    }
    config = storage.configured_storage()
    assert config is not None
    assert (config.endpoint, config.bucket, config.access_key_id) == ("https://stored.example.com", "env-bucket",
                                                                      "AKIAENV")
    assert config.repository_url("abc") == "s3:https://stored.example.com/env-bucket/sites/abc"


# --- the admin ---------------------------------------------------------------------


@pytest.fixture
def admin_client(db):
    from apps.accounts.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    return client


def settings_url():
    return reverse("admin:core_panelsettings_change", args=(PanelSettings.load().pk,))


def test_admin_storage_keys_are_encrypted_and_never_shown(admin_client, s3_server):
    page = admin_client.get(settings_url()).content.decode()
    assert "Backups are off until S3-compatible storage is configured" in page
    response = admin_client.post(settings_url(), {
        "backup_s3_endpoint": s3_server + "/", "backup_s3_region": "eu-central-1", "backup_s3_bucket": "site-backups",
        "backup_s3_prefix": "/pressluft/", "new_backup_s3_access_key_id": "AKIATESTKEY",
        "new_backup_s3_secret_access_key": SECRET_ACCESS_KEY,
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    config = storage.configured_storage()
    assert (config.endpoint, config.bucket, config.prefix) == (s3_server, "site-backups", "pressluft")
    assert config.secret_access_key == SECRET_ACCESS_KEY
    with connection.cursor() as cursor:
        cursor.execute("SELECT backup_s3_access_key_id, backup_s3_secret_access_key FROM core_panelsettings")
        stored = cursor.fetchone()
    assert all(stored) and "AKIATESTKEY" not in str(stored) and SECRET_ACCESS_KEY not in str(stored)
    page = admin_client.get(settings_url()).content.decode()
    assert SECRET_ACCESS_KEY not in page and "AKIATESTKEY" not in page
    assert "stored (encrypted)" in page and "On: backups go to s3://site-backups/pressluft" in page
    assert SECRET_ACCESS_KEY not in str(list(AuditEntry.objects.values_list("details", flat=True)))
    # An empty key field keeps what is stored.
    admin_client.post(settings_url(), {"backup_s3_endpoint": s3_server, "backup_s3_bucket": "site-backups"})
    assert storage.configured_storage().secret_access_key == SECRET_ACCESS_KEY


@pytest.mark.parametrize("field, value", [
    ("backup_s3_endpoint", "ftp://example.com"),
    ("backup_s3_endpoint", "https://key:secret@example.com"),
    ("backup_s3_bucket", "Bad_Bucket"),
    ("backup_s3_prefix", "a/../b"),
    ("new_backup_s3_secret_access_key", "two words"),
])
def test_admin_refuses_bad_storage_values(admin_client, field, value):
    response = admin_client.post(settings_url(), {field: value})
    assert response.status_code == 200
    assert storage.stored_values() == dict.fromkeys(storage.FIELDS, "")


def test_admin_back_up_now_without_storage_says_how_to_turn_backups_on(admin_client, site_with_production):
    _, production = site_with_production
    response = admin_client.post(
        reverse("admin:environments_environment_changelist"),
        {"action": "back_up_now", "index": 0, "_selected_action": [str(production.pk)]}, follow=True,
    )
    page = response.content.decode()
    assert "Backups are off until S3-compatible storage is configured" in page
    assert nothing_queued()
    listing = admin_client.get(reverse("admin:backups_backup_changelist")).content.decode()
    assert "Backups are off until S3-compatible storage is configured" in listing


def test_admin_back_up_now_queues_a_full_backup(admin_client, site_with_production, backup_storage):
    _, production = site_with_production
    page = admin_client.get(reverse("admin:environments_environment_change", args=(production.pk,)))
    assert page.status_code == 200 and 'value="back_up_now"' in page.content.decode()
    response = admin_client.post(
        reverse("admin:environments_environment_changelist"),
        {"action": "back_up_now", "index": 0, "_selected_action": [str(production.pk)]},
    )
    job = Job.objects.get(job_type="backup_create")
    assert response.status_code == 302 and str(job.pk) in response["Location"]
    assert Backup.objects.get(pk=job.payload["backup_id"]).backup_scope == "full"


# --- the management command ----------------------------------------------------------


def test_command_refuses_without_storage(site_with_production):
    site, production = site_with_production
    with pytest.raises(CommandError, match="backup_storage_not_configured"):
        call_command("backup_environment", site.slug, production.slug)
    assert nothing_queued()
    entry = AuditEntry.objects.get(action="environment.backup")
    assert entry.details["code"] == "backup_storage_not_configured"


def test_command_queues_a_backup(site_with_production, backup_storage, capsys):
    site, production = site_with_production
    call_command("backup_environment", site.slug, production.slug, "--scope", "db")
    job = Job.objects.get(job_type="backup_create")
    assert capsys.readouterr().out.strip() == str(job.pk)
    assert Backup.objects.get(pk=job.payload["backup_id"]).backup_scope == "db"


def test_storage_status_command(backup_storage, capsys):
    call_command("backup_storage")
    assert capsys.readouterr().out.startswith(f"on: restic repositories in s3://{backup_storage.backup_s3_bucket}/")
