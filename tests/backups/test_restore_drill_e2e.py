"""The restore drill on the real local node: the scheduler queues one drill
per site (scheduled priority, no duplicates); it restores the latest backup
into a throwaway environment, checks its health, records ``verified_at`` on
the backup and removes the throwaway; a backup whose restored code is broken
is recorded as failing. The admin names the sites whose latest backup is
not verified. Production is only read."""

import pwd
import uuid
from types import SimpleNamespace
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from apps.backups import services
from apps.backups.models import Backup
from apps.environments import naming
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.choices import JobPriority
from apps.jobs.models import Job
from apps.jobs.scheduler import enqueue_recurring
from tests.backups.restore_support import (
    back_up,
    database_state,
    entry,
    files_archive,
    forge_backup,
    rewrite_archive,
    sql,
)
from tests.sites.test_deploy_e2e import BREAKS_PAGES
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def gone(environment_id, system_name, root) -> bool:
    try:
        pwd.getpwnam(system_name)
        return False
    except KeyError:
        pass
    databases = sql("mysql", f"SHOW DATABASES LIKE '{system_name}%';").split()
    return not Environment.objects.filter(pk=environment_id).exists() and not Path(root).exists() and not databases


def test_restore_drill(api_client, local_node, backup_storage, staff_user):
    site, production = create_site(api_client, "Nu Nursery", "nu")
    try:
        _drill(api_client, site, production, staff_user)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _drill(api_client, site, production, staff_user):
    assert enqueue_recurring("backup_drill") == []  # nothing to verify yet
    full = back_up(api_client, production, "full")
    production_state = database_state(naming.system_name(production))

    jobs = enqueue_recurring("backup_drill")
    assert [(job.job_type, job.site_id, job.priority) for job in jobs] == [("backup_drill", site.pk,
                                                                            JobPriority.SCHEDULED)]
    assert jobs[0].payload["backup_id"] == str(full.pk)
    assert enqueue_recurring("backup_drill") == []  # queued already: no duplicate
    job = jobs[0]
    assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
    job.refresh_from_db()
    full.refresh_from_db()
    assert full.verified_at is not None and full.verify_failed_at is None and "healthy" in full.verify_message
    assert services.drill_state(full) == "verified"
    throwaway = job.result["throwaway"]
    assert list(site.environments.values_list("slug", flat=True)) == ["production"]
    removed = SimpleNamespace(id=uuid.UUID(job.result["throwaway_id"]))
    assert gone(removed.id, naming.system_name(removed), naming.root(removed))
    log = job_log(job.pk)
    assert "sha256 matches the backup" in log and f"remove the throwaway environment {throwaway}" in log
    assert database_state(naming.system_name(production)) == production_state
    assert enqueue_recurring("backup_drill") == []  # drilled this week

    # A backup whose code fatals: the drill fails, says why on the backup, and cleans up all the same.
    release = full.parts["files"]["release"]
    broken = forge_backup(site, production, db_from=full, files=rewrite_archive(files_archive(site, full), [
        (entry(f"releases/{release}/wp-content/mu-plugins/breaks-pages.php"), BREAKS_PAGES.encode()),
    ]))
    job = services.request_drill(broken.pk)
    runner.run_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "health_check_failed"), job_log(job.pk)
    broken.refresh_from_db()
    assert broken.verified_at is None and broken.verify_failed_at is not None
    assert "unhealthy" in broken.verify_message and services.drill_state(broken) == "failing"
    assert list(site.environments.values_list("slug", flat=True)) == ["production"]
    assert all(row.environment_id is None for row in Job.objects.filter(job_type="backup_drill"))
    production.refresh_from_db()
    site.refresh_from_db()
    assert (production.status, site.status) == ("active", "active")
    assert database_state(naming.system_name(production)) == production_state

    # The admin: the site's latest backup is failing its drill.
    client = Client()
    client.force_login(staff_user)
    page = client.get(reverse("admin:backups_backup_changelist")).content.decode()
    assert "Sites whose latest backup is not verified by a restore drill: nu: drill failed" in page
    page = client.get(reverse("admin:backups_backup_change", args=(full.pk,))).content.decode()
    assert "Verified" in page and 'value="verify_backup"' in page
    assert Backup.objects.filter(environment__site=site, verified_at__isnull=False).count() == 1
