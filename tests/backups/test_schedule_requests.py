"""Backup schedules and the final-backup choice as requests (no node work):
the defaults, the API's checks, which environments the scheduler picks, and
the opt-out of a final backup from the API, the admin and the commands."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from apps.backups import schedules
from apps.backups.choices import BackupReason
from apps.backups.models import Backup
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.jobs.choices import JobPriority, JobStatus
from apps.jobs.models import Job
from apps.jobs.scheduler import enqueue_recurring
from tests.test_admin import admin_client, run_action, superuser, url  # noqa: F401


def window_around_now() -> str:
    return (timezone.now() - timedelta(minutes=30)).strftime("%H:%M")


@pytest.fixture
def staging(site_with_production, node):
    site, production = site_with_production
    return EnvironmentFactory(site=site, node=node, slug="staging", environment_type=EnvironmentType.STAGING,
                              source_environment=production)


def test_defaults_production_daily_others_not(api_client, site_with_production, staging):
    _, production = site_with_production
    body = api_client.get(f"/api/environments/{production.pk}/backup-schedule").json()
    assert {key: body[key] for key in ("enabled", "backup_scope", "window_start", "window_hours", "retention_days",
                                       "is_default", "state_version")} == {
        "enabled": True, "backup_scope": "full", "window_start": "02:00", "window_hours": 4, "retention_days": 30,
        "is_default": True, "state_version": 0}
    assert body["next_window_start"] is not None and body["last_scheduled_backup_at"] is None
    other = api_client.get(f"/api/environments/{staging.pk}/backup-schedule").json()
    assert other["enabled"] is False and other["next_window_start"] is None


def test_put_validates_and_refuses_a_stale_version(api_client, site_with_production):
    _, production = site_with_production
    path = f"/api/environments/{production.pk}/backup-schedule"
    for bad in ({"window_hours": 0}, {"window_hours": 25}, {"window_start": "24:00"}, {"window_start": "2:00"},
                {"retention_days": 0}, {"retention_days": 3651}, {"enabled": "yes"}, {"surprise": 1},
                {"backup_scope": "everything"}):
        response = api_client.put(path, bad, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert response.json()["code"] == "bad_request"
    stored = api_client.put(path, {"window_start": "23:30", "window_hours": 3, "retention_days": 7,
                                   "state_version": 0}, format="json")
    assert stored.status_code == 200, stored.content
    body = stored.json()
    assert (body["window_start"], body["window_hours"], body["retention_days"], body["enabled"]) == ("23:30", 3, 7, True)
    assert (body["is_default"], body["state_version"]) == (False, 1)
    stale = api_client.put(path, {"retention_days": 8, "state_version": 0}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    assert api_client.put(path, {"retention_days": 8}, format="json").json()["retention_days"] == 8
    assert api_client.get("/api/environments/00000000-0000-0000-0000-000000000000/backup-schedule").status_code == 404


def test_window_wraps_past_midnight():
    schedule = schedules.BackupSchedule(window_start=timezone.datetime(2026, 1, 1, 23, 0).time(), window_hours=3,
                                        enabled=True)
    utc = timezone.get_fixed_timezone(0)
    inside = timezone.datetime(2026, 12, 5, 1, 30, tzinfo=utc)
    assert schedules.window_containing(schedule, inside) == timezone.datetime(2026, 12, 4, 23, 0, tzinfo=utc)
    assert schedules.window_containing(schedule, timezone.datetime(2026, 12, 5, 2, 0, tzinfo=utc)) is None
    assert schedules.next_window_start(schedule, inside) == timezone.datetime(2026, 12, 5, 23, 0, tzinfo=utc)


def test_scheduler_picks_due_environments_once(api_client, backup_storage, site_with_production, staging):
    _, production = site_with_production
    now_window = {"window_start": window_around_now(), "window_hours": 2}
    # Production's default window is not now (unless the clock says 02:00-06:00): move it here.
    api_client.put(f"/api/environments/{production.pk}/backup-schedule", now_window, format="json")
    assert [job.environment_id for job in enqueue_recurring("backup_create")] == [production.pk]
    assert enqueue_recurring("backup_create") == []  # queued: no second one

    # Staging does nothing by itself until its schedule is enabled.
    api_client.put(f"/api/environments/{staging.pk}/backup-schedule", {**now_window, "enabled": True,
                                                                       "backup_scope": "db"}, format="json")
    (job,) = enqueue_recurring("backup_create")
    assert job.environment_id == staging.pk and job.priority == JobPriority.SCHEDULED
    backup = Backup.objects.get(pk=job.payload["backup_id"])
    assert (backup.reason, backup.backup_scope, backup.status) == (BackupReason.SCHEDULED, "db", "pending")

    # Ended jobs: the window's backups exist, so nothing more today (read from the database: restart-safe).
    Job.objects.filter(job_type="backup_create").update(status=JobStatus.SUCCEEDED)
    assert enqueue_recurring("backup_create") == []
    # The next day's window: due again, unless a backup is queued or the environment is being deleted.
    Backup.objects.update(created_at=timezone.now() - timedelta(days=1))
    api_client.post(f"/api/environments/{production.pk}/backups", {"backup_scope": "db"}, format="json")
    api_client.delete(f"/api/environments/{staging.pk}?final_backup=false")
    assert enqueue_recurring("backup_create") == []
    api_client.put(f"/api/environments/{staging.pk}/backup-schedule", {"enabled": False}, format="json")
    Job.objects.filter(status=JobStatus.QUEUED).update(status=JobStatus.CANCELLED)
    assert [job.environment_id for job in enqueue_recurring("backup_create")] == [production.pk]


def test_a_missed_window_is_caught_up_until_the_next_one(api_client, backup_storage, site_with_production,
                                                        staging):
    from apps.backups.models import BackupSchedule
    from apps.environments.models import Environment

    _, production = site_with_production
    passed = {"window_start": (timezone.now() - timedelta(hours=3)).strftime("%H:%M"), "window_hours": 1}
    api_client.put(f"/api/environments/{production.pk}/backup-schedule", passed, format="json")
    api_client.put(f"/api/environments/{staging.pk}/backup-schedule", {**passed, "enabled": True}, format="json")
    # Schedules set (or environments created) after the window opened did not miss it.
    assert enqueue_recurring("backup_create") == []

    # The same schedules a day old: the worker was down during today's window.
    a_day_ago = timezone.now() - timedelta(days=1)
    Environment.objects.update(created_at=a_day_ago)
    BackupSchedule.objects.filter(environment=production).update(updated_at=a_day_ago)
    (job,) = enqueue_recurring("backup_create")
    assert job.environment_id == production.pk and job.priority == JobPriority.SCHEDULED
    assert enqueue_recurring("backup_create") == []  # queued: no second one
    Job.objects.filter(job_type="backup_create").update(status=JobStatus.SUCCEEDED)
    assert enqueue_recurring("backup_create") == []  # caught up: nothing more until the next window


def test_no_storage_no_scheduled_backups(api_client, site_with_production):
    _, production = site_with_production
    api_client.put(f"/api/environments/{production.pk}/backup-schedule",
                   {"window_start": window_around_now(), "window_hours": 2}, format="json")
    assert enqueue_recurring("backup_create") == []


def test_final_backup_is_asked_for_unless_opted_out(api_client, backup_storage, site_with_production, staging):
    site, production = site_with_production
    assert api_client.delete(f"/api/environments/{staging.pk}?final_backup=maybe").status_code == 400
    job = Job.objects.get(pk=api_client.delete(f"/api/environments/{staging.pk}").json()["job_id"])
    backup = Backup.objects.get(pk=job.payload["final_backups"][str(staging.pk)])
    assert (backup.reason, backup.backup_scope, backup.status) == ("final", "full", "pending")
    job.status = JobStatus.CANCELLED
    job.save()
    job = Job.objects.get(pk=api_client.delete(f"/api/sites/{site.pk}?final_backup=false").json()["job_id"])
    assert "final_backups" not in job.payload and job.payload["no_final_backup"] == "the operator opted out"
    job.status = JobStatus.CANCELLED
    job.save()
    job = Job.objects.get(pk=api_client.delete(f"/api/sites/{site.pk}").json()["job_id"])
    assert set(job.payload["final_backups"]) == {str(production.pk), str(staging.pk)}


def test_without_storage_the_delete_says_no_final_backup(api_client, site_with_production):
    site, _ = site_with_production
    job = Job.objects.get(pk=api_client.delete(f"/api/sites/{site.pk}").json()["job_id"])
    assert "storage is not configured" in job.payload["no_final_backup"]
    assert not Backup.objects.exists()


def test_admin_delete_confirmation_offers_the_opt_out(admin_client, backup_storage, site_with_production, staging):  # noqa: F811
    from apps.environments.models import Environment
    from apps.sites.models import Site

    site, _ = site_with_production
    page = run_action(admin_client, Environment, "delete_environments", [staging], _return_to_object="1")
    assert 'name="skip_final_backup"' in page.content.decode()
    assert "final backup" in page.content.decode()
    run_action(admin_client, Environment, "delete_environments", [staging], _return_to_object="1", post="yes",
               skip_final_backup="on")
    job = Job.objects.get(job_type="env_delete")
    assert job.payload["no_final_backup"] == "the operator opted out" and not Backup.objects.exists()
    job.status = JobStatus.CANCELLED
    job.save()
    run_action(admin_client, Site, "delete_sites", [site], _return_to_object="1", post="yes")
    job = Job.objects.get(job_type="site_delete")
    assert len(job.payload["final_backups"]) == 2 and Backup.objects.filter(reason="final").count() == 2


def test_admin_schedule_page_stores_the_schedule(admin_client, site_with_production):  # noqa: F811
    _, production = site_with_production
    page_url = reverse("admin:environments_environment_backup_schedule", args=[production.pk])
    page = admin_client.get(page_url)
    assert page.status_code == 200 and "02:00" in page.content.decode()
    response = admin_client.post(page_url, {
        "enabled": "on", "backup_scope": "db", "window_start": "04:15", "window_hours": "2", "retention_days": "14"})
    assert response.status_code == 200, response.content
    schedule = schedules.effective(production)
    assert (schedule.backup_scope, schedule.window_start.strftime("%H:%M"), schedule.window_hours,
            schedule.retention_days, schedule.enabled) == ("db", "04:15", 2, 14, True)


def test_delete_commands_take_the_opt_out_flag(backup_storage, site_with_production, staging):
    site, _ = site_with_production
    call_command("delete_environment", site.slug, "staging", "--no-final-backup")
    job = Job.objects.get(job_type="env_delete")
    assert job.payload["no_final_backup"] == "the operator opted out"
    job.status = JobStatus.CANCELLED
    job.save()
    call_command("delete_site", site.slug)
    assert len(Job.objects.get(job_type="site_delete").payload["final_backups"]) == 2
