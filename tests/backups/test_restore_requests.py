"""Asking for a restore (API, admin, management command): refused with a
clear code and nothing queued for a backup of another site, one not
completed, an unknown one, without storage or on a busy environment; queued
otherwise, in place or as a new clone."""

import uuid

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.backups import services
from apps.backups.factories import BackupFactory
from apps.core.choices import LifecycleStatus
from apps.environments.factories import EnvironmentFactory
from apps.environments.models import Environment
from apps.jobs.models import Job
from apps.sites.factories import SiteFactory

pytestmark = pytest.mark.django_db

PARTS = {"db": {"snapshot_id": "a" * 64, "sha256": "b" * 64, "bytes": 10, "added_bytes": 10}}


def completed_backup(environment, **overrides):
    values = dict(environment=environment, backup_scope="db", status="completed", parts=PARTS,
                  checksum=services.checksum_of(PARTS), size_bytes=10, completed_at=timezone.now())
    values.update(overrides)
    return BackupFactory(**values)


def restore_url(environment) -> str:
    return f"/api/environments/{environment.pk}/restore"


def restores_queued() -> int:
    return Job.objects.filter(job_type__in=("env_restore", "env_create")).count()


def test_restore_is_queued(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(production)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.job_type, job.environment_id, job.payload["backup_id"]) == ("env_restore", production.pk,
                                                                           str(backup.pk))
    assert AuditEntry.objects.get(action="environment.restore").job_id == job.pk


def test_a_backup_of_another_environment_of_the_site_may_be_restored(api_client, site_with_production,
                                                                    backup_storage, node):
    site, production = site_with_production
    staging = EnvironmentFactory(site=site, node=node, environment_type="staging", slug="staging")
    backup = completed_backup(staging)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 202, response.content


def test_foreign_backup_is_refused(api_client, site_with_production, backup_storage, node):
    _, production = site_with_production
    other = EnvironmentFactory(site=SiteFactory(), node=node, slug="production")
    backup = completed_backup(other)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "backup_of_another_site"
    assert restores_queued() == 0
    # As a clone of this site too: the backup names its own site, so the clone would be of that one;
    # through the command naming this site, refused.
    with pytest.raises(CommandError, match="backup_of_another_site"):
        call_command("restore_environment", production.site.slug, production.slug, "--backup", str(backup.pk))
    assert restores_queued() == 0


@pytest.mark.parametrize("status", ["pending", "running", "failed", "expired"])
def test_backup_not_completed_is_refused(api_client, site_with_production, backup_storage, status):
    _, production = site_with_production
    backup = completed_backup(production, status=status)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_not_restorable"
    assert response.json()["details"]["status"] == status
    response = api_client.post(f"/api/backups/{backup.pk}/restore-as-clone", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_not_restorable"
    assert restores_queued() == 0


def test_a_record_that_does_not_match_its_checksum_is_refused(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(production, checksum="sha256:" + "0" * 64)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_not_restorable"
    assert restores_queued() == 0


@pytest.mark.parametrize("body", [{}, {"backup_id": "nope"}, {"backup_id": str(uuid.uuid4())},
                                  {"backup_id": None}, ["x"]])
def test_bad_bodies_are_400(api_client, site_with_production, backup_storage, body):
    _, production = site_with_production
    response = api_client.post(restore_url(production), body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert restores_queued() == 0


def test_extra_fields_are_refused(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(production)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk), "as_new_environment": True},
                               format="json")
    assert response.status_code == 400
    assert restores_queued() == 0


def test_without_storage_409(api_client, site_with_production):
    _, production = site_with_production
    backup = completed_backup(production)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_storage_not_configured"
    assert restores_queued() == 0


def test_busy_environment_409(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(production)
    Environment.objects.filter(pk=production.pk).update(status=LifecycleStatus.DEPLOYING)
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "environment_not_active"
    assert restores_queued() == 0


def test_unknown_environment_404(api_client, backup_storage):
    response = api_client.post(f"/api/environments/{uuid.uuid4()}/restore", {"backup_id": str(uuid.uuid4())},
                               format="json")
    assert response.status_code == 404


def test_restore_as_clone_queues_the_copy_then_the_restore(api_client, site_with_production, backup_storage):
    site, production = site_with_production
    production.current_release = None
    backup = completed_backup(production)
    response = api_client.post(f"/api/backups/{backup.pk}/restore-as-clone", {"name": "Last week"}, format="json")
    assert response.status_code == 202, response.content
    restore = Job.objects.get(pk=response.json()["job_id"])
    clone = Environment.objects.get(pk=restore.environment_id)
    assert (clone.environment_type, clone.name, clone.source_environment_id) == ("clone", "Last week", production.pk)
    assert clone.slug.startswith("restore-")
    create = Job.objects.get(pk=restore.payload["env_create_job_id"])
    assert (create.job_type, create.environment_id) == ("env_create", clone.pk)
    assert create.created_at <= restore.created_at and restore.payload["new_environment"] is True
    # The slug is the site's: twice is a conflict, and nothing more is queued.
    again = api_client.post(f"/api/backups/{backup.pk}/restore-as-clone", {"slug": clone.slug}, format="json")
    assert again.status_code == 409 and restores_queued() == 2


def test_a_backup_of_a_deleted_environment_is_restored_by_its_site(api_client, site_with_production,
                                                                    backup_storage, node):
    """A final backup outlives its environment: the same-site check goes by
    ``site_id``, URLs are rewritten from the URL the backup recorded."""
    from apps.environments import services as environment_services

    site, production = site_with_production
    staging = EnvironmentFactory(site=site, node=node, environment_type="staging", slug="staging")
    backup = completed_backup(staging, reason="final")
    staging_url, staging_uid = staging.preview_url, staging.pk
    environment_services.remove_environment_records([staging.pk])
    backup.refresh_from_db()
    assert backup.environment is None and backup.status == "completed"
    assert services.rewrite_source(backup) == {"from_url": staging_url,
                                               "from_system_name": f"pl{staging_uid.hex[:12]}"}
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 202, response.content
    # As a clone: of production, the deleted environment being gone.
    response = api_client.post(f"/api/backups/{backup.pk}/restore-as-clone", {}, format="json")
    assert response.status_code == 202, response.content
    clone = Environment.objects.get(pk=Job.objects.get(pk=response.json()["job_id"]).environment_id)
    assert clone.source_environment_id == production.pk and clone.name.startswith("Restore of staging (")
    # Without the recorded URL there is nothing to rewrite from: refused, nothing queued.
    queued = restores_queued()
    backup.__class__.objects.filter(pk=backup.pk).update(environment_url="")
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_not_restorable"
    assert restores_queued() == queued


def test_a_backup_of_a_deleted_site_is_refused_as_a_clone(api_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(None, site_id=uuid.uuid4(), site_slug="gone",
                              environment_slug="production", environment_uid=uuid.uuid4(),
                              environment_url="http://gone.example.test")
    response = api_client.post(f"/api/backups/{backup.pk}/restore-as-clone", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_site_deleted"
    response = api_client.post(restore_url(production), {"backup_id": str(backup.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "backup_of_another_site"
    assert restores_queued() == 0


def test_an_expired_drill_throwaway_goes_without_a_final_backup(site_with_production, backup_storage, node):
    """A drill that died leaves its throwaway copy for the expiry sweep: no final backup of it."""
    from apps.environments import services as environment_services
    from apps.environments.jobs import expired_final_backup
    from apps.jobs.factories import JobFactory

    site, production = site_with_production
    drill = JobFactory(job_type="backup_drill", site=site, node=node)
    throwaway = environment_services.create_throwaway_environment(production, services.drill_throwaway_slug(drill))
    assert expired_final_backup(throwaway) == {services.NO_FINAL_BACKUP: "a restore drill's throwaway copy of "
                                                                          "production"}
    # A clone that merely looks like one (no drill job of that name) gets its final backup.
    lookalike = EnvironmentFactory(site=site, node=node, environment_type="clone", slug="drill-00000000")
    assert str(lookalike.pk) in expired_final_backup(lookalike)[services.FINAL_BACKUPS]


# --- the admin ---------------------------------------------------------------------


@pytest.fixture
def admin_client(db):
    from apps.accounts.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    return client


def test_admin_restore_page_asks_for_confirmation(admin_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(production)
    url = reverse("admin:environments_environment_restore", args=(production.pk,))
    page = admin_client.get(url).content.decode()
    assert str(backup.pk) in page and "pre-restore" in page
    response = admin_client.post(url, {"backup": str(backup.pk)})
    assert response.status_code == 200 and restores_queued() == 0  # not confirmed
    response = admin_client.post(url, {"backup": str(backup.pk), "confirm": "on"})
    job = Job.objects.get(job_type="env_restore")
    assert response.status_code == 302 and str(job.pk) in response["Location"]
    assert job.payload["backup_id"] == str(backup.pk)


def test_admin_backup_actions(admin_client, site_with_production, backup_storage):
    _, production = site_with_production
    backup = completed_backup(production)
    page = admin_client.get(reverse("admin:backups_backup_change", args=(backup.pk,))).content.decode()
    assert 'value="restore_backup"' in page and 'value="restore_backup_as_clone"' in page
    changelist = reverse("admin:backups_backup_changelist")
    # Asked first, then queued.
    response = admin_client.post(changelist, {"action": "restore_backup", "_selected_action": [str(backup.pk)]})
    assert response.status_code == 200 and "Yes, restore" in response.content.decode() and restores_queued() == 0
    response = admin_client.post(changelist, {"action": "restore_backup", "_selected_action": [str(backup.pk)],
                                              "post": "yes"})
    assert Job.objects.filter(job_type="env_restore", environment=production).count() == 1, response
    response = admin_client.post(changelist, {"action": "restore_backup_as_clone",
                                              "_selected_action": [str(backup.pk)], "post": "yes"})
    assert Job.objects.filter(job_type="env_create").count() == 1
    assert Job.objects.filter(job_type="env_restore").exclude(environment=production).count() == 1


# --- the management command ----------------------------------------------------------


def test_command_queues_a_restore(site_with_production, backup_storage, capsys):
    site, production = site_with_production
    backup = completed_backup(production)
    call_command("restore_environment", site.slug, production.slug, "--backup", str(backup.pk))
    job = Job.objects.get(job_type="env_restore")
    assert capsys.readouterr().out.strip() == str(job.pk)
    call_command("restore_environment", site.slug, production.slug, "--backup", str(backup.pk), "--as-clone",
                 "--clone-slug", "from-command")
    assert Environment.objects.get(slug="from-command").environment_type == "clone"


def test_command_refuses_unknown_backup(site_with_production, backup_storage):
    site, production = site_with_production
    with pytest.raises(CommandError, match="no backup"):
        call_command("restore_environment", site.slug, production.slug, "--backup", "not-an-id")
    assert restores_queued() == 0
