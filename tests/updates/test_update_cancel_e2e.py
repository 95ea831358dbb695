"""An update cancelled while its pre-update backup runs, on the real local
node: the backup's node program is stopped halfway through the database
stream (a table held locked by another session keeps mariadb-dump waiting
there), the pre-update Backup row ends ``failed`` with `job_cancelled` (the job log says why too), no
snapshot of half a stream is stored, and the environment is active and
unchanged."""

import json
import subprocess

import pytest

from apps.backups import node_ops as backup_node_ops
from apps.backups.models import Backup
from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.backups.restore_support import restic
from tests.jobs.support import InThread, wait_until
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log
from tests.updates.update_server import UpdateServer

pytestmark = pytest.mark.django_db(transaction=True)


def waiting_on_the_lock(database: str) -> int:
    """Sessions on ``database`` waiting for the table another session holds locked."""
    done = subprocess.run(["mariadb", "--batch", "--skip-column-names", "-e",
                           "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = "
                           f"'{database}' AND STATE LIKE 'Waiting for table metadata lock%'"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.strip() or 0)


def test_a_cancel_during_the_pre_update_backup_fails_the_backup_and_changes_nothing(
        api_client, local_node, backup_storage, settings, monkeypatch):
    with UpdateServer() as server:
        settings.WORDPRESS_UPDATE_API = server.base
        site, production = create_site(api_client, "Kappa Kites", "kappa")
        lock = None
        try:
            database = naming.system_name(production)
            current = (naming.root(production) + "/current")
            # A core update on offer (the job is stopped before it would fetch the package).
            server.core = {"version": "9.9.9", "package": "core.zip"}
            release_before = subprocess.run(["readlink", current], capture_output=True, text=True).stdout
            real_create_backup = backup_node_ops.create_backup
            made = []

            def create_backup_behind_a_lock(environment, backup, config, ctx=None):
                nonlocal lock
                made.append(backup)
                # Another session holds wp_posts: the dump streams the tables before it, then waits.
                lock = subprocess.Popen(["mariadb", database], stdin=subprocess.PIPE, text=True)
                lock.stdin.write("LOCK TABLES wp_posts WRITE;\n")
                lock.stdin.flush()
                return real_create_backup(environment, backup, config, ctx=ctx)

            monkeypatch.setattr(backup_node_ops, "create_backup", create_backup_behind_a_lock)
            response = api_client.post(f"/api/environments/{production.pk}/updates", {"scope": "core"},
                                       format="json")
            assert response.status_code == 202, response.content
            job_id = response.json()["job_id"]
            run = InThread(runner.run_job, job_id)
            wait_until(lambda: waiting_on_the_lock(database), 120, lambda: job_log(job_id))
            backup = made[0]
            backup.refresh_from_db()
            assert backup.status == "running" and backup.reason == "pre_update"

            response = api_client.post(f"/api/jobs/{job_id}/cancel")
            assert response.status_code in (200, 202), response.content
            assert run.result(timeout=300) == "cancelled", job_log(job_id)

            job = Job.objects.get(pk=job_id)
            log = job_log(job_id)
            backup = Backup.objects.get(pk=backup.pk)
            assert backup.status == "failed", log
            assert f"pre-update backup {backup.pk} failed: the job was cancelled while it ran" in log
            # And the row says why (docs/backups.md, "Why a backup failed").
            assert (backup.error_code, backup.error_message) == ("job_cancelled", "the job was cancelled while it ran")
            assert backup.job_id == job.pk
            assert backup.completed_at is None and not backup.parts
            # The node program was stopped before restic saw the end of its input: no snapshot of it.
            found = json.loads(restic(site, "snapshots", "--json", "--tag", f"backup:{backup.pk}") or b"[]")
            assert found in (None, []), found
            production.refresh_from_db()
            site.refresh_from_db()
            assert (job.status, production.status, site.status) == ("cancelled", "active", "active")
            lock.stdin.close()
            lock.wait(timeout=60)
            lock = None
            assert subprocess.run(["readlink", current], capture_output=True, text=True).stdout == release_before
            assert production.current_release.source_type != "update"
            status, _, body, _ = http_get(production.preview_url)
            assert status == 200 and "Hello world!" in body
        finally:
            if lock is not None:
                lock.stdin.close()
                lock.wait(timeout=60)
            monkeypatch.undo()
            response = api_client.delete(f"/api/sites/{site.id}?final_backup=false")
            if response.status_code == 202:
                runner.run_job(response.json()["job_id"])
