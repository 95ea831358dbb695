"""Drift checks end to end on the real local node: production is cloned to
staging (the baseline is taken), then changed in production in the ways a
live site changes, and each check says whether a promotion would overwrite
what changed: a comment, a post and an upload (protected) leave it clean
and are reported; an option or a plugin file (overwritten by a promotion)
make it drifted. The site's hostile inputs (a link and a FIFO in the
uploads, a table whose name is SQL, a table without a primary key) are
measured without being followed, read or executed. Bad requests get
{code, message}. A refresh from production brings the protected data over
and takes a new baseline, so a drifted staging is clean again."""

import io
import os
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.audit.models import AuditEntry
from apps.environments import drift, naming
from apps.environments.models import DriftBaseline, DriftCheck, Environment
from apps.jobs import runner
from apps.jobs.models import Job
from apps.nodes.remote_exec import run_program
from tests.sites.test_environment_clone_e2e import sql
from tests.sites.test_held_mail_and_rollback_admin_e2e import page_messages
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def check(api_client, staging) -> DriftCheck:
    response = api_client.post(f"/api/environments/{staging.id}/drift-check")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert Job.objects.get(pk=job_id).job_type == "drift_check"
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    staging.refresh_from_db()
    assert staging.status == "active"
    assert staging.last_drift_check.job_id == Job.objects.get(pk=job_id).pk
    return staging.last_drift_check


def as_site_user(environment, *argv):
    subprocess.run(["runuser", "-u", naming.system_name(environment), "--", *argv], check=True, cwd="/")


def test_drift_checks_report_what_a_promotion_would_overwrite(api_client, local_node):
    site, production = create_site(api_client, "Drift Diner", "drift")
    try:
        _drift(api_client, site, production)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _chunks_follow_the_primary_key(production):
    """Small chunks on a real table: every row counted once, chunks in key
    order, and a changed row located by the chunk it is in."""
    database = naming.system_name(production)
    params = {"system_name": database, "root": naming.root(production), "db_password": production.db_password,
              "chunk_rows": 2}
    before = run_program(production.node, "env_checksums.py", params)
    options = before["tables"]["wp_options"]
    volatile = ("option_name = 'cron' OR option_name LIKE '\\_transient\\_%' "
                "OR option_name LIKE '\\_site\\_transient\\_%'")
    kept = int(sql(database, f"SELECT COUNT(*) FROM wp_options WHERE NOT ({volatile})"))
    assert options["rows"] == kept and options["volatile"]["rows"] == int(
        sql(database, "SELECT COUNT(*) FROM wp_options")) - kept
    assert len(options["chunks"]) == (kept + 1) // 2
    assert sum(chunk[1] for chunk in options["chunks"]) == kept
    keys = [chunk[0] for chunk in options["chunks"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)

    key = int(sql(database, "SELECT option_id FROM wp_options WHERE option_name = 'blogdescription'"))
    original = sql(database, "SELECT option_value FROM wp_options WHERE option_name = 'blogdescription'")
    sql(database, "UPDATE wp_options SET option_value = 'moved' WHERE option_name = 'blogdescription'")
    try:
        after = run_program(production.node, "env_checksums.py", params)
    finally:
        sql(database, f"UPDATE wp_options SET option_value = '{original}' WHERE option_name = 'blogdescription'")
    report = drift.compare(before, after, "content-protect")
    assert report["blocking_tables"] == ["wp_options"]
    preceding = [last for last in keys if last < key]
    assert report["tables"][0]["changed_after_key"] == (preceding[-1] if preceding else None)
    assert run_program(production.node, "env_checksums.py", params)["tables"]["wp_options"] == options


def _drift(api_client, site, production):
    database = naming.system_name(production)
    uploads = Path(naming.root(production)) / "shared" / "uploads"
    # Planted before the clone, so the baseline measures them too: a link to a
    # file only root may read, and a FIFO that would block a reader forever.
    as_site_user(production, "ln", "-s", "/etc/shadow", str(uploads / "shadow-link"))
    as_site_user(production, "mkfifo", str(uploads / "blocking-fifo"))

    response = api_client.post(f"/api/sites/{site.id}/environments",
                               {"name": "Staging", "slug": "staging", "type": "staging",
                                "promotion_preset": "content-protect"}, format="json")
    assert response.status_code == 202, response.content
    clone_job = response.json()["job_id"]
    assert runner.run_job(clone_job) == "succeeded", job_log(clone_job)
    staging = Environment.objects.get(site=site, slug="staging")
    assert "drift baseline clone" in job_log(clone_job)
    baseline = DriftBaseline.objects.get(environment=staging)
    assert baseline.origin == "clone" and baseline.measured_environment_id == production.id
    measured = baseline.checksums
    assert measured["tables"]["wp_options"]["key"] == "integer"
    assert measured["tables"]["wp_posts"]["rows"] == int(sql(database, "SELECT COUNT(*) FROM wp_posts"))
    assert "wp-includes/version.php" in measured["code"]
    assert measured["code"]["wp-content/uploads"][0] == "link"
    # The link is recorded as a link (its target text hashed), never read through; the FIFO as "other".
    assert measured["uploads"]["shadow-link"][0] == "link"
    assert measured["uploads"]["blocking-fifo"][0] == "other"
    assert staging.drift_status == "unknown"

    _chunks_follow_the_primary_key(production)

    # Right after the clone: clean, and the API shows it.
    first = check(api_client, staging)
    assert first.result == "clean", first.report
    assert first.report["tables"] == [] and first.report["code"]["counts"] == {"added": 0, "changed": 0, "removed": 0}
    shown = api_client.get(f"/api/environments/{staging.id}").json()
    assert shown["drift_status"] == "clean"
    assert shown["last_drift_check_id"] == str(first.pk)
    assert shown["drift_checked_at"] is not None

    # Protected data changes in production: a comment, a post, an upload. Still clean, each reported.
    sql(database, "INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, comment_date, "
                  "comment_date_gmt) VALUES (1, 'Customer', 'Great food!', NOW(), UTC_TIMESTAMP())")
    sql(database, "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, "
                  "post_status, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type) "
                  f"VALUES (1, NOW(), UTC_TIMESTAMP(), 'Today only at {production.preview_url}/menu', 'Lunch special', "
                  "'', 'publish', '', '', NOW(), "
                  "UTC_TIMESTAMP(), '', 'post')")
    as_site_user(production, "sh", "-c", f"echo menu > {uploads}/menu.txt")
    second = check(api_client, staging)
    assert second.result == "clean", second.report
    reported = {entry["table"]: entry for entry in second.report["tables"]}
    assert reported["wp_comments"]["kind"] == "protected" and reported["wp_comments"]["rows_added"] == 1
    assert reported["wp_posts"]["rows_added"] == 1 and not reported["wp_posts"]["blocking"]
    assert second.report["uploads"]["added"] == ["menu.txt"]
    assert second.report["blocking_tables"] == []
    assert second.pk != first.pk and DriftCheck.objects.get(pk=first.pk).result == "clean"  # records stay

    # An option (wp_options is overwritten by a promotion): drifted, and it says where.
    original = sql(database, "SELECT option_value FROM wp_options WHERE option_name = 'blogdescription'")
    sql(database, "UPDATE wp_options SET option_value = 'Changed in production' WHERE option_name = 'blogdescription'")
    third = check(api_client, staging)
    assert third.result == "drifted", third.report
    assert third.report["blocking_tables"] == ["wp_options"]
    assert staging.drift_status == "drifted"

    # Refresh from production: the protected tables and uploads come over, URLs
    # rewritten; staging keeps its own settings; the baseline is taken anew.
    assert api_client.post(f"/api/environments/{production.id}/refresh-from-production").json()["code"] == "conflict"
    response = api_client.post(f"/api/environments/{staging.id}/refresh-from-production")
    assert response.status_code == 202, response.content
    refresh_job = response.json()["job_id"]
    assert runner.run_job(refresh_job) == "succeeded", job_log(refresh_job)
    staging.refresh_from_db()
    assert (staging.status, staging.drift_status) == ("active", "unknown")
    assert DriftBaseline.objects.filter(environment=staging).first().origin == "refresh"
    assert "wp_comments" in Job.objects.get(pk=refresh_job).result["tables"]
    staging_db = naming.system_name(staging)
    content = sql(staging_db, "SELECT post_content FROM wp_posts WHERE post_title = 'Lunch special'")
    assert content == f"Today only at {staging.preview_url}/menu"
    assert sql(staging_db, "SELECT COUNT(*) FROM wp_comments WHERE comment_content = 'Great food!'") == "1"
    assert sql(staging_db, "SELECT option_value FROM wp_options WHERE option_name = 'blogdescription'") == original
    assert (Path(naming.root(staging)) / "shared" / "uploads" / "menu.txt").read_text() == "menu\n"
    assert check(api_client, staging).result == "clean"

    # A plugin file of production's release changed (replaced, as a deploy
    # would: the inode is shared with staging's release): drifted.
    release = Path(naming.root(production)) / "current"
    plugin = sorted(path for path in (release / "wp-content" / "plugins").rglob("*.php") if path.is_file())[0]
    relative = str(plugin.relative_to(release))
    content = plugin.read_bytes()
    replacement = plugin.with_name(".replacement")
    replacement.write_bytes(content + b"\n// patched in production\n")
    os.replace(replacement, plugin)
    try:
        fourth = check(api_client, staging)
        assert fourth.result == "drifted", fourth.report
        assert fourth.report["code"]["changed"] == [relative]
        assert fourth.report["blocking_tables"] == []
    finally:
        replacement.write_bytes(content)
        os.replace(replacement, plugin)

    # Hostile tables in production: a name that is SQL, and no primary key.
    sql(database, "CREATE TABLE `wp_x``; DROP TABLE wp_posts; --` (id int primary key, v text)")
    sql(database, "INSERT INTO `wp_x``; DROP TABLE wp_posts; --` VALUES (1, 'a')")
    sql(database, "CREATE TABLE wp_nokey (a int, b text)")
    sql(database, "INSERT INTO wp_nokey VALUES (1, 'x'), (1, 'x')")
    fifth = check(api_client, staging)
    assert fifth.result == "drifted"
    added = {entry["table"]: entry for entry in fifth.report["tables"] if entry["change"] == "added"}
    assert set(added) == {"wp_x`; DROP TABLE wp_posts; --", "wp_nokey"}
    assert fifth.checksums["tables"]["wp_nokey"] == {
        "rows": 2, "checksum": fifth.checksums["tables"]["wp_nokey"]["checksum"], "key": "none"}
    assert sql(database, "SELECT COUNT(*) FROM wp_posts") != ""  # still there
    sql(database, "DROP TABLE `wp_x``; DROP TABLE wp_posts; --`, wp_nokey")

    # The management command and the admin action take the same path.
    out = io.StringIO()
    call_command("drift_check", "drift", "staging", "--wait", stdout=out, stderr=io.StringIO())
    assert "clean: " in out.getvalue()
    assert AuditEntry.objects.filter(action="environment.drift_check", resource_id=str(staging.pk)).count() == 7
    client = Client()
    client.force_login(UserFactory(email="drift-operator@example.test", is_superuser=True))
    response = client.post("/admin/environments/environment/", {
        "action": "check_drift", "index": 0, "_selected_action": [str(staging.pk)], "_return_to_object": "1"},
        follow=True)
    assert any("drift check queued as" in text for text in page_messages(response)), page_messages(response)
    queued = Job.objects.filter(environment=staging, job_type="drift_check", status="queued").first()
    assert queued is not None
    assert runner.run_job(str(queued.pk)) == "succeeded"
    page = client.get(f"/admin/environments/environment/{staging.pk}/change/").content.decode()
    assert "Last drift check" in page and "production unchanged since the baseline" in page

    # A refresh by the command: the same path, a new baseline, clean again after a check.
    out = io.StringIO()
    call_command("refresh_environment", "drift", "staging", "--wait", stdout=out, stderr=io.StringIO())
    assert DriftBaseline.objects.filter(environment=staging).count() == 3
    assert AuditEntry.objects.filter(action="environment.refresh", resource_id=str(staging.pk)).count() == 2
    assert check(api_client, staging).result == "clean"

    # Refusals, each {code, message}, nothing queued.
    jobs_before = Job.objects.count()
    refused = api_client.post(f"/api/environments/{production.id}/drift-check")
    assert refused.status_code == 409 and refused.json()["code"] == "drift_no_baseline", refused.content
    assert refused.json()["message"]
    missing = api_client.post("/api/environments/00000000-0000-4000-8000-000000000000/drift-check")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api_client.post("/api/environments/not-a-uuid/drift-check").json()["code"] == "not_found"
    assert Job.objects.count() == jobs_before
