"""End to end on the real local node against the loopback S3 server: a full
backup of a real site lands in its restic repository (objects in the bucket,
snapshots whose streams match the recorded checksums), a second one adds
little (deduplicated), a db-only backup holds the database alone, and a link
the site plants in its uploads is kept as a link, never followed."""

import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
from datetime import timedelta

import pytest
from django.core.management import call_command

from apps.backups import services, storage
from apps.backups.models import Backup
from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.backups.conftest import SECRET_ACCESS_KEY, object_keys, vanished_lock_reads
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def restic(site, *args) -> bytes:
    config = storage.configured_storage()
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "RESTIC_REPOSITORY": config.repository_url(site.pk),
           "RESTIC_PASSWORD": storage.repository_password(site), "AWS_ACCESS_KEY_ID": config.access_key_id,
           "AWS_SECRET_ACCESS_KEY": config.secret_access_key}
    return subprocess.run(["restic", "--no-cache", "-o", f"s3.region={config.region}", *args], env=env,
                          capture_output=True, check=True, timeout=300).stdout


def back_up(api_client, environment, scope) -> Backup:
    response = api_client.post(f"/api/environments/{environment.pk}/backups", {"backup_scope": scope}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    assert SECRET_ACCESS_KEY not in job_log(job_id)
    return Backup.objects.get(pk=Job.objects.get(pk=job_id).payload["backup_id"])


def as_site(environment, *argv):
    subprocess.run(["runuser", "-u", naming.system_name(environment), "--", *argv], check=True, cwd="/")


def test_full_incremental_and_db_backups(api_client, local_node, backup_storage, s3_server, s3_request_log):
    site, production = create_site(api_client, "Gamma Garden", "gamma")
    try:
        _backups(api_client, site, production, backup_storage, s3_server)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])
    # The database and the files went into restic side by side: neither restic start read a lock the
    # other one had removed (it would have stalled for about 40 s).
    assert vanished_lock_reads(s3_request_log, backup_storage.backup_s3_bucket) == []


def _backups(api_client, site, production, backup_storage, s3_server):
    uploads = f"{naming.root(production)}/shared/uploads"
    as_site(production, "mkdir", "-p", f"{uploads}/2026")
    photo = os.urandom(3 * 1024 * 1024)
    subprocess.run(["runuser", "-u", naming.system_name(production), "--", "tee", f"{uploads}/2026/photo.bin"],
                   input=photo, stdout=subprocess.DEVNULL, check=True, cwd="/")
    # The site plants links to root's secrets: they must stay links.
    as_site(production, "ln", "-s", "/etc/shadow", f"{uploads}/shadow-link")
    as_site(production, "ln", "-s", "/root", f"{uploads}/root-dir")

    first = back_up(api_client, production, "full")
    assert first.status == "completed"
    assert set(first.parts) == {"db", "files"}
    assert first.checksum == services.checksum_of(first.parts) and first.checksum.startswith("sha256:")
    assert first.size_bytes == first.parts["db"]["bytes"] + first.parts["files"]["bytes"] > len(photo)
    assert first.added_bytes > len(photo) // 2  # the photo is random: it does not compress away
    assert first.completed_at is not None
    assert timedelta(days=29) < first.retention_until - first.completed_at <= timedelta(days=30)
    key = f"test/backups/sites/{site.pk}"
    assert first.storage_path == f"s3://{backup_storage.backup_s3_bucket}/{key}"
    listed = api_client.get(f"/api/environments/{production.pk}/backups").json()
    assert listed[0]["id"] == str(first.pk) and listed[0]["checksum"] == first.checksum
    assert listed[0]["status"] == "completed" and listed[0]["size_bytes"] == first.size_bytes

    # The repository is in the bucket, under the site's folder.
    keys = object_keys(s3_server, backup_storage.backup_s3_bucket, key + "/")
    assert f"{key}/config" in keys
    assert any(k.startswith(f"{key}/snapshots/") for k in keys) and any(k.startswith(f"{key}/data/") for k in keys)
    snapshots = json.loads(restic(site, "snapshots", "--json", "--tag", f"backup:{first.pk}"))
    assert {snapshot["id"] for snapshot in snapshots} == {first.parts["db"]["snapshot_id"],
                                                          first.parts["files"]["snapshot_id"]}

    # What restic gives back is exactly what was hashed on the way in.
    dump = restic(site, "dump", first.parts["db"]["snapshot_id"], "database.sql")
    assert hashlib.sha256(dump).hexdigest() == first.parts["db"]["sha256"]
    assert b"CREATE TABLE `wp_posts`" in dump and b"Gamma Garden" in dump
    archive = restic(site, "dump", first.parts["files"]["snapshot_id"], "files.tar")
    assert hashlib.sha256(archive).hexdigest() == first.parts["files"]["sha256"]
    release = first.parts["files"]["release"]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert tar.extractfile(members["shared/uploads/2026/photo.bin"]).read() == photo
        assert f"releases/{release}/wp-includes/version.php" in members
        assert members["shared/wp-config.php"].isfile()
        for name, target in (("shadow-link", "/etc/shadow"), ("root-dir", "/root")):
            assert members[f"shared/uploads/{name}"].issym() and members[f"shared/uploads/{name}"].linkname == target
        assert not any(name.startswith(("etc/", "root/")) or "/.ssh/" in name for name in members)
    shadow = open("/etc/shadow", "rb").read().split(b"\n")[0]
    assert shadow not in archive

    # Unchanged site: the second full backup stores next to nothing new.
    second = back_up(api_client, production, "full")
    assert second.status == "completed"
    # The same files give the same stream (the database may have moved on: WordPress's cron writes options).
    assert second.parts["files"]["sha256"] == first.parts["files"]["sha256"]
    assert second.added_bytes < first.added_bytes / 10, (first.added_bytes, second.added_bytes)
    # Unchanged files (same fingerprint): the second backup names the first one's files snapshot.
    assert second.parts["files"]["snapshot_id"] == first.parts["files"]["snapshot_id"]
    assert second.parts["files"]["reused_from"] == str(first.pk) and second.parts["files"]["added_bytes"] == 0
    assert second.parts["db"]["snapshot_id"] != first.parts["db"]["snapshot_id"]
    # A changed file (even with its old mtime) changes the fingerprint: the third one stores the files anew.
    subprocess.run(["runuser", "-u", naming.system_name(production), "--", "sh", "-c",
                    f"printf x >> {uploads}/2026/photo.bin && touch -d @0 {uploads}/2026/photo.bin"], check=True,
                   cwd="/")
    third = back_up(api_client, production, "files")
    assert third.parts["files"]["snapshot_id"] != first.parts["files"]["snapshot_id"]
    assert "reused_from" not in third.parts["files"] and third.parts["files"]["sha256"] != first.parts["files"]["sha256"]

    # The database alone.
    only_db = back_up(api_client, production, "db")
    assert set(only_db.parts) == {"db"}
    assert only_db.size_bytes == only_db.parts["db"]["bytes"] < first.size_bytes
    assert only_db.checksum == services.checksum_of(only_db.parts)
    assert only_db.storage_path == first.storage_path
    tags = json.loads(restic(site, "snapshots", "--json", "--tag", f"backup:{only_db.pk}"))
    assert [snapshot["paths"] for snapshot in tags] == [["/database.sql"]]

    # The management command, run here and now.
    call_command("backup_environment", site.slug, production.slug, "--scope", "db", "--wait")
    by_command = Backup.objects.filter(environment=production).order_by("-created_at").first()
    assert (by_command.backup_scope, by_command.status) == ("db", "completed")

    # Storage that does not answer: the backup fails (to be tried again), the site is untouched.
    from apps.core.models import PanelSettings

    panel = PanelSettings.load()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    panel.backup_s3_endpoint = f"http://127.0.0.1:{closed_port}"
    panel.save()
    response = api_client.post(f"/api/environments/{production.pk}/backups", {"backup_scope": "db"}, format="json")
    job_id = response.json()["job_id"]
    runner.run_job(job_id)
    job = Job.objects.get(pk=job_id)
    assert job.error_code == "backup_storage_failed", job_log(job_id)
    assert job.status == "queued" and job.attempt_count == 1  # retryable: back in the queue, later
    assert Backup.objects.get(pk=job.payload["backup_id"]).status == "failed"
    production.refresh_from_db()
    site.refresh_from_db()
    assert (site.status, production.status) == ("active", "active")
    assert api_client.post(f"/api/jobs/{job_id}/cancel").status_code in (200, 202)
