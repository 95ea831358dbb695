"""End to end on the real local node against the loopback S3 server:
a scheduled backup runs once per window and keeps the environment's
retention; backup_cleanup forgets and prunes what is past retention (the
objects leave the bucket, what is kept stays restorable); deleting an
environment or a site takes a final backup that outlives it (and is cleaned
up in its turn), unless the operator opts out; without storage a delete
goes ahead and says so."""

import hashlib
import json
import os
import subprocess
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.backups.models import Backup, BackupRepository
from apps.environments import naming
from apps.jobs import runner
from apps.jobs.choices import JobPriority
from apps.jobs.models import Job
from apps.jobs.scheduler import enqueue_recurring
from tests.backups.conftest import object_keys, s3_client
from tests.backups.test_backup_e2e import back_up, restic
from tests.backups.test_schedule_requests import window_around_now
from tests.sites.test_environment_delete_e2e import assert_gone_from_node, clone
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def run(job_id):
    assert runner.run_job(str(job_id)) == "succeeded", job_log(job_id)


def delete_site_quietly(api_client, site):
    response = api_client.delete(f"/api/sites/{site.id}?final_backup=false")
    if response.status_code == 202:
        runner.run_job(response.json()["job_id"])


def stored_bytes(endpoint, bucket, prefix) -> int:
    total = 0
    for page in s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        total += sum(item["Size"] for item in page.get("Contents", []))
    return total


def test_scheduled_backup_once_per_window_with_the_environments_retention(api_client, local_node, backup_storage):
    site, production = create_site(api_client, "Theta Tea", "theta")
    try:
        response = api_client.put(f"/api/environments/{production.pk}/backup-schedule",
                                  {"window_start": window_around_now(), "window_hours": 2, "retention_days": 7},
                                  format="json")
        assert response.status_code == 200, response.content
        (job,) = enqueue_recurring("backup_create")
        assert job.priority == JobPriority.SCHEDULED and job.environment_id == production.pk
        assert enqueue_recurring("backup_create") == []
        run(job.pk)
        backup = Backup.objects.get(pk=job.payload["backup_id"])
        assert (backup.status, backup.reason, set(backup.parts)) == ("completed", "scheduled", {"db", "files"})
        assert timedelta(days=6, hours=23) < backup.retention_until - backup.completed_at <= timedelta(days=7)
        assert enqueue_recurring("backup_create") == []  # this window's backup is taken
        body = api_client.get(f"/api/environments/{production.pk}/backup-schedule").json()
        assert body["last_scheduled_backup_at"] is not None

        # The repository vanished from the storage behind the panel's back: the
        # next backup (which opens a known repository directly) makes it again.
        bucket, key = backup_storage.backup_s3_bucket, f"test/backups/sites/{site.pk}/"
        client = s3_client(backup_storage.backup_s3_endpoint)
        for name in object_keys(backup_storage.backup_s3_endpoint, bucket, key):
            client.delete_object(Bucket=bucket, Key=name)
        again = back_up(api_client, production, "db")
        assert again.status == "completed"
        assert f"{key}config" in object_keys(backup_storage.backup_s3_endpoint, bucket, key)
        job = Job.objects.get(payload__backup_id=str(again.pk))
        assert "created the site's backup repository" in job_log(job.pk)
    finally:
        delete_site_quietly(api_client, site)


def test_cleanup_expires_what_is_past_retention_and_prunes_it(api_client, local_node, backup_storage, s3_server):
    site, production = create_site(api_client, "Kappa Kiln", "kappa")
    try:
        _cleanup(api_client, site, production, backup_storage, s3_server)
    finally:
        delete_site_quietly(api_client, site)


def _cleanup(api_client, site, production, backup_storage, s3_server):
    bucket, key = backup_storage.backup_s3_bucket, f"test/backups/sites/{site.pk}"
    uploads = f"{naming.root(production)}/shared/uploads"
    big = os.urandom(4 * 1024 * 1024)
    subprocess.run(["runuser", "-u", naming.system_name(production), "--", "tee", f"{uploads}/big.bin"],
                   input=big, stdout=subprocess.DEVNULL, check=True, cwd="/")
    first = back_up(api_client, production, "full")  # holds big.bin
    os.unlink(f"{uploads}/big.bin")
    second = back_up(api_client, production, "db")
    older = back_up(api_client, production, "full")
    kept = back_up(api_client, production, "full")  # unchanged files: names older's files snapshot
    assert kept.parts["files"]["snapshot_id"] == older.parts["files"]["snapshot_id"]
    failed = Backup.objects.create(environment=production, site_id=site.pk, site_slug=site.slug,
                                   environment_slug=production.slug, backup_scope="db", status="failed")
    data_before = stored_bytes(s3_server, bucket, f"{key}/data/")

    past = timezone.now() - timedelta(minutes=1)
    Backup.objects.filter(pk__in=[first.pk, second.pk, failed.pk, older.pk]).update(retention_until=past)
    (job,) = enqueue_recurring("backup_cleanup")
    assert (job.site_id, job.node_id, job.priority) == (site.pk, production.node_id, JobPriority.SCHEDULED)
    assert enqueue_recurring("backup_cleanup") == []  # one per site repository
    run(job.pk)

    for backup in (first, second, failed, older, kept):
        backup.refresh_from_db()
    assert [b.status for b in (first, second, failed, older, kept)] == [
        "expired", "expired", "failed", "expired", "completed"]
    assert all(b.purged_at for b in (first, second, failed, older)) and kept.purged_at is None
    keys = set(object_keys(s3_server, bucket, f"{key}/"))
    for snapshot in [*first.parts.values(), *second.parts.values(), older.parts["db"]]:
        assert f"{key}/snapshots/{snapshot['snapshot_id']}" not in keys
    for snapshot in kept.parts.values():  # the shared files snapshot stays with the backup that names it
        assert f"{key}/snapshots/{snapshot['snapshot_id']}" in keys
    # big.bin was only in the first backup: its data left the bucket.
    assert stored_bytes(s3_server, bucket, f"{key}/data/") < data_before - 3 * 1024 * 1024
    # What is kept is whole and restorable.
    restic(site, "check")
    for name, filename in (("db", "database.sql"), ("files", "files.tar")):
        dump = restic(site, "dump", kept.parts[name]["snapshot_id"], filename)
        assert hashlib.sha256(dump).hexdigest() == kept.parts[name]["sha256"]
    assert {s["id"] for s in json.loads(restic(site, "snapshots", "--json"))} == {
        part["snapshot_id"] for part in kept.parts.values()}
    assert enqueue_recurring("backup_cleanup") == []  # nothing past retention any more
    assert job_log(job.pk).count("forgot snapshot") == 4


def test_final_backups_outlive_their_environment_and_site(api_client, local_node, backup_storage, s3_server):
    site, production = create_site(api_client, "Iota Ink", "iota")
    try:
        _final_backups(api_client, site, production, backup_storage, s3_server)
    finally:
        delete_site_quietly(api_client, site)


def _final_backups(api_client, site, production, backup_storage, s3_server):
    staging = clone(api_client, site, "staging")
    response = api_client.delete(f"/api/environments/{staging.id}")
    assert response.status_code == 202
    run(response.json()["job_id"])
    assert "final backup of staging" in job_log(response.json()["job_id"])
    assert_gone_from_node(staging)
    final = Backup.objects.get(site_id=site.pk, reason="final")
    assert (final.status, final.environment_id, final.environment_slug, final.backup_scope) == (
        "completed", None, "staging", "full")
    assert timedelta(days=29) < final.retention_until - final.completed_at <= timedelta(days=30)
    dump = restic(site, "dump", final.parts["db"]["snapshot_id"], "database.sql")
    assert hashlib.sha256(dump).hexdigest() == final.parts["db"]["sha256"] and b"Iota Ink" in dump

    # Opting out: nothing is taken, and the log says why.
    second = clone(api_client, site, "second")
    response = api_client.delete(f"/api/environments/{second.id}?final_backup=false")
    run(response.json()["job_id"])
    assert "no final backup is taken: the operator opted out" in job_log(response.json()["job_id"])
    assert Backup.objects.filter(site_id=site.pk).count() == 1

    # The site, by the command: production's final backup, then everything goes but the backups.
    call_command("delete_site", site.slug, "--wait")
    finals = Backup.objects.filter(site_id=site.pk, reason="final").order_by("created_at")
    assert [(b.environment_slug, b.status, b.environment_id) for b in finals] == [
        ("staging", "completed", None), ("production", "completed", None)]
    assert BackupRepository.objects.filter(site_id=site.pk).exists()
    listed = object_keys(s3_server, backup_storage.backup_s3_bucket, f"test/backups/sites/{site.pk}/snapshots/")
    assert len(listed) == 4  # db and files of each final backup

    # Past their retention, the deleted site's backups are cleaned up like any others.
    Backup.objects.filter(site_id=site.pk).update(retention_until=timezone.now() - timedelta(minutes=1))
    (job,) = enqueue_recurring("backup_cleanup")
    assert job.site_id is None and job.node_id == production.node_id
    run(job.pk)
    assert set(Backup.objects.filter(site_id=site.pk).values_list("status", flat=True)) == {"expired"}
    assert object_keys(s3_server, backup_storage.backup_s3_bucket,
                       f"test/backups/sites/{site.pk}/snapshots/") == []


def test_without_storage_a_delete_goes_ahead_and_says_so(api_client, local_node):
    site, production = create_site(api_client, "Lambda Loom", "lambda")
    response = api_client.delete(f"/api/sites/{site.id}")
    assert response.status_code == 202
    run(response.json()["job_id"])
    assert "no final backup is taken: backup storage is not configured" in job_log(response.json()["job_id"])
    assert_gone_from_node(production)
