"""The env_promote job end to end through the API on the real local node
(the node-level checks of the mechanics are in test_promotion_e2e.py):
production cloned to staging (commerce-protect, WooCommerce-shaped tables);
staging changes a setting and its theme (a deploy); production takes orders
and a comment after the clone → drift check clean → the plan lists exactly
the tables that then change → POST promote → the job checks drift itself,
takes a pre_promote full backup and promotes: production serves staging's
theme and setting, every order and comment is still there byte for byte.
Then production changes an option → drifted → POST promote 409 with nothing
queued or changed → refresh from production → clean → the promotion works
again. A cancel after the switch, before the finish, swaps production back;
when that swap back fails, production is restored from the pre-promotion
backup."""

import json

import pytest
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.audit.models import AuditEntry
from apps.backups.models import Backup
from apps.environments import naming, promotion
from apps.environments.models import DriftCheck, Environment
from apps.jobs import runner
from apps.jobs.models import Job
from tests.backups.conftest import backup_storage, s3_request_log, s3_server  # noqa: F401
from tests.sites.test_deploy_sources_e2e import THEME_ARCHIVE
from tests.sites.test_drift_e2e import check
from tests.sites.test_environment_clone_e2e import fresh, sql
from tests.sites.test_held_mail_and_rollback_admin_e2e import page_messages
from tests.sites.test_promotion_e2e import PROTECTED, STATE_ROOT, current, deploy_theme, dumps, no_leftovers, option, shop  # noqa: F401
from tests.sites.test_site_lifecycle_e2e import job_log

pytestmark = pytest.mark.django_db(transaction=True)


def promote(api_client, staging, production):
    return api_client.post(f"/api/environments/{staging.id}/promote", {"target_environment_id": str(production.id)},
                           format="json")


def plan_of(api_client, staging, production) -> dict:
    response = api_client.get(f"/api/environments/{staging.id}/promotion-plan?target={production.id}")
    assert response.status_code == 200, response.content
    return response.json()


def run_promotion(api_client, staging, production) -> Job:
    response = promote(api_client, staging, production)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.job_type == "env_promote"
    runner.run_job(job.pk)
    job.refresh_from_db()
    return job


def test_promotion_job_keeps_live_data_and_refuses_a_drifted_copy(api_client, shop, backup_storage, tmp_path):
    production, staging = shop
    prod_db, staging_db = naming.system_name(production), naming.system_name(staging)

    # Staging: a new theme (deploy) and a setting; a post that must not go live.
    deploy_theme(api_client, staging, tmp_path, THEME_ARCHIVE)
    sql(staging_db, "UPDATE wp_options SET option_value='Omega Outlet Relaunch' WHERE option_name='blogname'")
    sql(staging_db, "INSERT INTO wp_posts (post_title, post_content, post_excerpt, to_ping, pinged, post_content_filtered,"
                    " post_status, post_type) VALUES ('Staging draft', '', '', '', '', '', 'publish', 'post')")
    # Production after the clone: orders and a comment.
    sql(prod_db, "INSERT INTO wp_wc_orders VALUES (2, 'wc-processing', 99.9, 'second@example.com', NOW()),"
                 " (3, 'wc-on-hold', 5, 'third@example.com', NOW())")
    sql(prod_db, "INSERT INTO wp_woocommerce_order_items (order_item_name, order_item_type, order_id) VALUES ('Tee', 'line_item', 2)")
    sql(prod_db, "INSERT INTO wp_wc_orders_meta (order_id, meta_key, meta_value) VALUES (2, '_shop_note', 'a:1:{s:1:\"x\";s:2:\"ü\";}')")
    sql(prod_db, "INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, comment_date, comment_date_gmt)"
                 " VALUES (1, 'Customer', 'Great mug! ✓', NOW(), UTC_TIMESTAMP())")

    # Not yet checked: refused before anything is queued.
    response = promote(api_client, staging, production)
    assert response.status_code == 409 and response.json()["code"] == "promotion_drift_unknown", response.content
    drift_check = check(api_client, staging)
    assert drift_check.result == "clean", drift_check.report
    assert {"wp_wc_orders", "wp_comments"} <= {entry["table"] for entry in drift_check.report["tables"]}

    plan = plan_of(api_client, staging, production)
    assert plan["promotable"] is True and plan["drift"]["status"] == "clean"
    assert [entry["table"] for entry in plan["tables_protected"]] == PROTECTED
    assert {entry["table"] for entry in plan["tables_overwritten"]} >= {"wp_options", "wp_shop_settings", "wp_users"}
    assert "wp-content/themes/pressluft-test/index.php" in plan["code"]["added"]
    not_live = {entry["table"]: entry for entry in plan["not_going_live"]}
    assert not_live["wp_posts"]["holds"] == "posts, pages and other content"
    assert (not_live["wp_wc_orders"]["source_rows"], not_live["wp_wc_orders"]["target_rows"]) == (1, 3)
    assert not_live["wp_comments"]["holds"] == "comments"
    assert "wp_options" in plan["changed_tables"]
    # The admin's Promote page shows the same plan, the button under it.
    admin = Client()
    admin.force_login(UserFactory(email="promoter@example.test", is_superuser=True))
    page_url = f"/admin/environments/environment/{staging.pk}/promote/"
    html = admin.get(page_url).content.decode()
    assert "What will not go live" in html and "wp_wc_orders (orders): 1 rows here, 3 in production" in html
    assert html.index("wp_shop_settings") < html.index('value="Promote" class="default" name="_save">')

    before = dumps(prod_db)
    old_release = current(production)
    job = run_promotion(api_client, staging, production)
    assert job.status == "succeeded", job_log(job.pk)
    log = job_log(job.pk)
    for step in ("drift check", "pre-promotion full backup", "promote staging", "purged"):
        assert step in log, log
    no_leftovers(production)
    production.refresh_from_db()
    staging.refresh_from_db()
    assert production.status == staging.status == "active"
    release = production.current_release
    assert (release.source_type, release.health, f"releases/{release.directory}") == (
        "promotion", "healthy", current(production))
    assert current(production) != old_release
    status, body = fresh(production.preview_url)
    assert status == 200 and "pressluft-test-theme Omega Outlet Relaunch" in body, body[:300]
    after = dumps(prod_db)
    for table in PROTECTED:
        assert after[table] == before[table], table
    assert "Staging draft" not in after["wp_posts"] and "Great mug! ✓" in after["wp_comments"]
    assert sorted(table for table in after if after[table] != before.get(table)) == plan["changed_tables"]
    backup = Backup.objects.get(pk=job.result["backup_id"])
    assert (backup.reason, backup.backup_scope, backup.status, backup.environment_id) == (
        "pre_promote", "full", "completed", production.pk)
    own_check = DriftCheck.objects.get(pk=job.result["drift_check_id"])
    assert (own_check.job_id, own_check.result, own_check.environment_id) == (job.pk, "clean", staging.pk)
    assert staging.drift_status == "unknown"  # its last check described production before this promotion

    # Production changes a setting a promotion would overwrite: drifted, refused, nothing queued or changed.
    sql(prod_db, "UPDATE wp_options SET option_value='Live tagline' WHERE option_name='blogdescription'")
    assert check(api_client, staging).result == "drifted"
    jobs, before, live_release = Job.objects.count(), dumps(prod_db), current(production)
    response = promote(api_client, staging, production)
    assert response.status_code == 409 and response.json()["code"] == "promotion_drifted", response.content
    assert Job.objects.count() == jobs and dumps(prod_db) == before and current(production) == live_release
    plan = plan_of(api_client, staging, production)
    assert plan["promotable"] is False and "overwrite" in plan["drift"]["blocker"]
    html = admin.get(page_url).content.decode()
    assert "Promotion not possible now: production changed data" in html and 'name="_save" disabled>' in html
    response = admin.post(page_url, {"confirm": "on"})
    assert any("cannot be promoted" in text for text in page_messages(response)), page_messages(response)
    assert Job.objects.count() == jobs and dumps(prod_db) == before
    assert AuditEntry.objects.filter(action="environment.promote", result="failed").exists()

    # Refresh from production: a new baseline, clean again, and the promotion works.
    response = api_client.post(f"/api/environments/{staging.id}/refresh-from-production")
    assert response.status_code == 202, response.content
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    assert check(api_client, staging).result == "clean"
    sql(staging_db, "UPDATE wp_options SET option_value='Second relaunch' WHERE option_name='blogname'")
    # This time from the admin's page: to the job it queued.
    response = admin.post(page_url, {"confirm": "on"})
    job = Job.objects.filter(job_type="env_promote").latest("created_at")
    assert response.status_code == 302 and str(job.pk) in response["Location"], page_messages(response)
    assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
    assert option(prod_db, "blogname") == "Second relaunch"
    assert "Great mug! ✓" in sql(prod_db, "SELECT comment_content FROM wp_comments")
    assert Backup.objects.filter(environment=production, reason="pre_promote", status="completed").count() == 2


def test_a_cancel_after_the_switch_swaps_production_back(api_client, shop, backup_storage, monkeypatch):
    production, staging = shop
    prod_db, staging_db = naming.system_name(production), naming.system_name(staging)
    sql(staging_db, "UPDATE wp_options SET option_value='Never live' WHERE option_name='blogname'")
    assert check(api_client, staging).result == "clean"
    before, old_release = dumps(prod_db), current(production)
    real_check = promotion.node_ops.check_health
    seen = {}

    def cancel_while_checking(environment, ctx=None, **kwargs):
        # Switched: the promoted site is live. The operator cancels now, before the finish.
        seen["blogname"] = option(prod_db, "blogname")
        response = api_client.post(f"/api/jobs/{ctx.job.pk}/cancel")
        assert response.status_code in (200, 202), response.content
        return real_check(environment, ctx, **kwargs)

    monkeypatch.setattr(promotion.node_ops, "check_health", cancel_while_checking)
    job = run_promotion(api_client, staging, production)
    assert job.status == "cancelled", job_log(job.pk)
    assert seen["blogname"] == "Never live"
    assert "swapping production back" in job_log(job.pk)
    no_leftovers(production)
    assert current(production) == old_release and dumps(prod_db) == before
    production.refresh_from_db()
    assert production.status == "active"
    assert production.current_release.directory == old_release.split("/")[1]
    assert Environment.objects.get(pk=staging.pk).status == "active"


def test_a_failed_swap_back_fails_the_job_naming_the_pre_promotion_backup(api_client, shop, backup_storage,
                                                                           monkeypatch):
    """The swap back fails: production is restored from the pre-promotion
    backup inside the job (health checked), the job still fails and says so,
    production is active and serves its pre-promotion content."""
    production, staging = shop
    prod_db, staging_db = naming.system_name(production), naming.system_name(staging)
    sql(staging_db, "UPDATE wp_options SET option_value='Never live' WHERE option_name='blogname'")
    assert check(api_client, staging).result == "clean"
    before, old_release, blogname = dumps(prod_db), current(production), option(prod_db, "blogname").strip()
    real_check = promotion.node_ops.check_health
    seen = {}

    def cancel_and_block_the_swap_back(environment, ctx=None, **kwargs):
        # A table in the way of the swap back (where the promoted tables go back to): its RENAME fails.
        if "blogname" not in seen:
            seen["blogname"] = option(prod_db, "blogname").strip()
            sql(f"{prod_db}_promote", "CREATE TABLE wp_options (id INT)")
            api_client.post(f"/api/jobs/{ctx.job.pk}/cancel")
        return real_check(environment, ctx, **kwargs)

    monkeypatch.setattr(promotion.node_ops, "check_health", cancel_and_block_the_swap_back)
    try:
        job = run_promotion(api_client, staging, production)
        log = job_log(job.pk)
        assert (job.status, job.error_code) == ("failed", "promotion_restored_from_backup"), log
        assert seen["blogname"] == "Never live"  # the promotion was live when the swap back failed
        backup = Backup.objects.get(environment=production, reason="pre_promote")
        pre_restore = Backup.objects.get(environment=production, reason="pre_restore")
        assert f"restored from the pre-promotion backup {backup.pk}" in job.error_message
        assert str(pre_restore.pk) in job.error_message and pre_restore.status == "completed"
        assert job.result["restored_from_backup_id"] == str(backup.pk)
        assert "health check of the restored site" in log and f"backup {backup.pk} restored into" in log
        production.refresh_from_db()
        staging.refresh_from_db()
        assert (production.status, staging.status) == ("active", "active")
        release = production.current_release
        assert (release.source_type, release.health) == ("backup", "healthy")
        assert current(production) == f"releases/{release.directory}" != old_release
        # Production's pre-promotion content: every table as before (options but what a visit rewrites).
        after = dumps(prod_db)
        assert sorted(after) == sorted(before)
        assert {t: d for t, d in after.items() if t != "wp_options"} == {
            t: d for t, d in before.items() if t != "wp_options"}
        assert option(prod_db, "blogname").strip() == blogname != "Never live"
        status, body = fresh(production.preview_url)
        assert status == 200 and blogname in body and "Never live" not in body, body[:300]
        # The promotion is forgotten on the node; the tables it moved are kept for an operator.
        assert not (STATE_ROOT / f"{prod_db}.json").exists()
        assert sql(f"{prod_db}_prepromote", "SHOW TABLES").split()
    finally:
        sql(prod_db, f"DROP DATABASE IF EXISTS {prod_db}_promote; DROP DATABASE IF EXISTS {prod_db}_prepromote")
        promotion.node_ops.promotion_phase(staging, production, "revert")
    no_leftovers(production)


def test_a_rerun_after_the_worker_died_in_the_finish_completes_it(api_client, shop, backup_storage):
    production, staging = shop
    prod_db, staging_db = naming.system_name(production), naming.system_name(staging)
    sql(staging_db, "UPDATE wp_options SET option_value='Finished by the rerun' WHERE option_name='blogname'")
    assert check(api_client, staging).result == "clean"
    response = promote(api_client, staging, production)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    # What the first run did before its worker died: prepare, switch, a healthy verdict, the finish begun.
    release = job.payload["release"]
    for phase in ("prepare", "switch"):
        promotion.node_ops.promotion_phase(staging, production, phase, release=release)
    state_file = STATE_ROOT / f"{prod_db}.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps(dict(state, phase="finishing")))
    Job.objects.filter(pk=job.pk).update(attempt_count=1)  # the sweeper requeued it as a retry

    assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
    log = job_log(job.pk)
    assert "finishing it instead" in log and "an earlier run of this job finished the promotion" in log
    no_leftovers(production)
    assert current(production) == f"releases/{release}"
    assert option(prod_db, "blogname") == "Finished by the rerun"
    production.refresh_from_db()
    assert (production.status, production.current_release.directory) == ("active", release)
    assert not Backup.objects.filter(environment=production, reason="pre_promote").exists()  # not promoted twice
