"""Promotion mechanics end to end on the real local node: a site's production
cloned to staging through the API (commerce-protect, WooCommerce-shaped order
tables made here), staging changes its theme (a deploy), an option and a
plugin's own table, production takes orders and a comment meanwhile; the
plan names what will change, the promotion (the node program env_promote.py
run over SSH, phase by phase, as the env_promote job will run it) brings
staging's code and settings live and leaves every protected row and the
uploads exactly as they were. A promoted release that fatals is swapped back
by itself. Links planted in staging's release or uploads are never followed."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from apps.environments import naming, node_ops, promotion
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.errors import JobError
from apps.jobs.models import Job
from apps.sites.models import Site
from tests.environments.archives import make_tar
from tests.sites.test_deploy_e2e import ACTIVATE, THEME_CSS
from tests.sites.test_deploy_sources_e2e import THEME_ARCHIVE, deploy, upload
from tests.sites.test_environment_clone_e2e import fresh, sql
from tests.sites.test_site_lifecycle_e2e import create_site, job_log
from tests.sites.test_trust_boundary_e2e import as_site, tree_state

pytestmark = pytest.mark.django_db(transaction=True)

STATE_ROOT = Path("/var/lib/pressluft/promote")
ORDER_TABLES = """
CREATE TABLE wp_wc_orders (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, status VARCHAR(20), total_amount DECIMAL(26,8),
  billing_email VARCHAR(320), date_created_gmt DATETIME) DEFAULT CHARSET=utf8mb4;
CREATE TABLE wp_wc_orders_meta (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id BIGINT UNSIGNED,
  meta_key VARCHAR(255), meta_value LONGTEXT) DEFAULT CHARSET=utf8mb4;
CREATE TABLE wp_wc_order_addresses (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id BIGINT UNSIGNED,
  address_type VARCHAR(20), city TEXT) DEFAULT CHARSET=utf8mb4;
CREATE TABLE wp_woocommerce_order_items (order_item_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_item_name TEXT, order_item_type VARCHAR(200), order_id BIGINT UNSIGNED) DEFAULT CHARSET=utf8mb4;
CREATE TABLE wp_woocommerce_order_itemmeta (meta_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_item_id BIGINT UNSIGNED, meta_key VARCHAR(255), meta_value LONGTEXT) DEFAULT CHARSET=utf8mb4;
CREATE TABLE wp_actionscheduler_actions (action_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  hook VARCHAR(191), status VARCHAR(20)) DEFAULT CHARSET=utf8mb4;
INSERT INTO wp_actionscheduler_actions (hook, status) VALUES ('woocommerce_scheduled_subscription_payment', 'pending');
CREATE TABLE wp_shop_settings (name VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT) DEFAULT CHARSET=utf8mb4;
INSERT INTO wp_wc_orders VALUES (1, 'wc-completed', 10.5, 'first@example.com', '2026-12-01 10:00:00');
INSERT INTO wp_woocommerce_order_items VALUES (1, 'Mug', 'line_item', 1);
INSERT INTO wp_woocommerce_order_itemmeta VALUES (1, 1, '_qty', '1');
INSERT INTO wp_wc_orders_meta VALUES (1, 1, '_shop_note', 'first order');
INSERT INTO wp_wc_order_addresses VALUES (1, 1, 'billing', 'Basel');
INSERT INTO wp_shop_settings VALUES ('currency', 'EUR'), ('layout', 'grid');
"""
PROTECTED = ["wp_actionscheduler_actions", "wp_commentmeta", "wp_comments", "wp_postmeta", "wp_posts", "wp_term_relationships",
             "wp_term_taxonomy", "wp_terms", "wp_wc_order_addresses", "wp_wc_orders", "wp_wc_orders_meta",
             "wp_woocommerce_order_itemmeta", "wp_woocommerce_order_items"]


def tables(database: str) -> list[str]:
    return sql(database, "SHOW TABLES").split()


def table_dump(database: str, table: str) -> str:
    """A table's structure (without its AUTO_INCREMENT counter) and rows, one row a line."""
    out = subprocess.run(["mariadb-dump", "--skip-comments", "--skip-extended-insert", "--skip-dump-date",
                          database, table], capture_output=True, text=True, check=True).stdout
    return re.sub(r" AUTO_INCREMENT=\d+", "", out)


def dumps(database: str) -> dict[str, str]:
    return {table: table_dump(database, table) for table in tables(database)}


def option(database: str, name: str) -> str:
    return sql(database, f"SELECT option_value FROM wp_options WHERE option_name='{name}'")


def current(environment) -> str:
    return os.readlink(Path(naming.root(environment)) / "current")


def deploy_theme(api_client, environment, tmp_path, entries) -> None:
    response = upload(api_client, environment, make_tar(tmp_path / f"theme-{len(list(tmp_path.iterdir()))}.tar.gz",
                                                        entries))
    assert response.status_code == 201, response.content
    job = deploy(api_client, environment, "upload", response.json()["id"])
    assert job.status == "succeeded", job_log(job.pk)


def no_leftovers(production) -> None:
    name = naming.system_name(production)
    assert not (STATE_ROOT / f"{name}.json").exists()
    scratch = subprocess.run(["mariadb", "--batch", "--skip-column-names", "-e", f"SHOW DATABASES LIKE '{name}\\_%'"],
                             capture_output=True, text=True, check=True).stdout
    assert scratch.strip() == ""
    assert not list((Path(naming.root(production)) / "releases").glob(".*.partial"))


@pytest.fixture
def shop(api_client, local_node):
    """Production with order tables and a plugin table, cloned to staging (commerce-protect)."""
    site, production = create_site(api_client, "Omega Outlet", "omega")
    try:
        prod_db = naming.system_name(production)
        subprocess.run(["mariadb", prod_db], input=ORDER_TABLES, text=True, check=True)
        uploads = Path(naming.root(production)) / "shared" / "uploads" / "2026"
        uploads.mkdir(parents=True, exist_ok=True)
        (uploads / "receipt.txt").write_text("production's upload\n")
        subprocess.run(["chown", "-R", f"{prod_db}:www-data", str(uploads)], check=True)
        response = api_client.post(f"/api/sites/{site.id}/environments",
                                   {"name": "Staging", "slug": "staging", "type": "staging",
                                    "promotion_preset": "commerce-protect"}, format="json")
        assert response.status_code == 202, response.content
        assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
        staging = Environment.objects.get(site=site, slug="staging")
        yield production, staging
    finally:
        if Site.objects.filter(pk=site.pk).exists():
            for environment in Environment.objects.filter(site=site).exclude(status="active"):
                api_client.post(f"/api/environments/{environment.id}/reset")
            response = api_client.delete(f"/api/sites/{site.id}")
            if response.status_code == 202:
                runner.run_job(response.json()["job_id"])


def test_promotion_keeps_orders_and_comments_and_a_fatal_release_is_swapped_back(api_client, shop, tmp_path):
    production, staging = shop
    prod_db, staging_db = naming.system_name(production), naming.system_name(staging)
    prod_host = production.preview_url.split("//", 1)[1]

    # Staging: a new theme (deploy), a changed option, a plugin's table changed, a new plugin table,
    # a post and an order that must not go live.
    deploy_theme(api_client, staging, tmp_path, THEME_ARCHIVE)
    staging_url = staging.preview_url
    sql(staging_db, "UPDATE wp_options SET option_value='Omega Outlet Relaunch' WHERE option_name='blogname'")
    serialized = f'a:1:{{s:4:"link";s:{len(staging_url) + 5}:"{staging_url}/shop";}}'
    sql(staging_db, f"INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('shop_links', '{serialized}', 'no')")
    sql(staging_db, "UPDATE wp_shop_settings SET value='list' WHERE name='layout'")
    sql(staging_db, "CREATE TABLE wp_shop_log (id INT PRIMARY KEY, line TEXT); INSERT INTO wp_shop_log VALUES (1, 'new')")
    sql(staging_db, "INSERT INTO wp_posts (post_title, post_content, post_excerpt, to_ping, pinged, post_content_filtered,"
                    " post_status, post_type) VALUES ('Staging draft', '', '', '', '', '', 'publish', 'post')")
    sql(staging_db, "INSERT INTO wp_wc_orders VALUES (99, 'wc-pending', 1, 'test@staging', NOW())")
    # What running held work in staging does: a renewal marked complete, the schedule changed.
    sql(staging_db, "UPDATE wp_actionscheduler_actions SET status='complete'")
    sql(staging_db, "UPDATE wp_options SET option_value='a:1:{s:7:\"version\";i:2;}' WHERE option_name='cron'")
    staging_uploads = Path(naming.root(staging)) / "shared" / "uploads"
    assert as_site(staging, "ln", "-s", "/etc/passwd", str(staging_uploads / "passwd-link")).returncode == 0
    assert as_site(staging, "sh", "-c", f"echo staging-only > {staging_uploads}/staging.txt").returncode == 0

    # Production after the clone: orders, a comment, a table only it has.
    sql(prod_db, "INSERT INTO wp_wc_orders VALUES (2, 'wc-processing', 99.9, 'second@example.com', NOW()),"
                 " (3, 'wc-on-hold', 5, 'third@example.com', NOW())")
    sql(prod_db, "INSERT INTO wp_woocommerce_order_items (order_item_name, order_item_type, order_id) VALUES ('Tee', 'line_item', 2)")
    sql(prod_db, "INSERT INTO wp_woocommerce_order_itemmeta (order_item_id, meta_key, meta_value) VALUES (2, '_qty', '3')")
    sql(prod_db, "INSERT INTO wp_wc_orders_meta (order_id, meta_key, meta_value) VALUES (2, '_shop_note', 'a:1:{s:1:\"x\";s:2:\"ü\";}')")
    sql(prod_db, "INSERT INTO wp_comments (comment_post_ID, comment_author, comment_content, comment_date, comment_date_gmt)"
                 f" VALUES (1, 'Customer', 'Great mug! ✓ Saw it first on {staging_url}/', NOW(), UTC_TIMESTAMP())")
    sql(prod_db, "CREATE TABLE wp_prod_audit (id INT PRIMARY KEY, what TEXT); INSERT INTO wp_prod_audit VALUES (1, 'kept')")
    prod_uploads = Path(naming.root(production)) / "shared" / "uploads"
    uploads_before = tree_state(prod_uploads)
    old_release = current(production)

    # The plan.
    plan = promotion.plan(staging, production)
    assert plan["protected_tables"] == PROTECTED
    assert plan["kept_target_only"] == ["wp_prod_audit"]
    by_table = {entry["table"]: entry for entry in plan["tables"]}
    assert by_table["wp_wc_orders"]["action"] == "protected"
    assert (by_table["wp_wc_orders"]["source_rows"], by_table["wp_wc_orders"]["target_rows"]) == (2, 3)
    assert by_table["wp_shop_log"]["action"] == "create"
    assert by_table["wp_users"] == dict(by_table["wp_users"], action="overwrite", identical=True)
    assert "wp-content/themes/pressluft-test/index.php" in plan["code"]["added"]
    listed = plan["code"]["added"] + plan["code"]["changed"] + plan["code"]["removed"]
    assert not [name for name in listed if name.startswith(("wp-content/uploads", "wp-config.php"))]
    assert "wp-includes/version.php" not in listed  # the same core on both sides
    before = dumps(prod_db)

    # The promotion.
    result = promotion.promote(staging, production, release=naming.new_release_name())
    no_leftovers(production)
    assert current(production) == f"releases/{result['release']}" != old_release
    status, body = fresh(production.preview_url)
    assert status == 200 and "pressluft-test-theme Omega Outlet Relaunch" in body, body[:300]
    assert staging_url.split("//", 1)[1] not in body
    assert option(prod_db, "home") == production.preview_url
    assert option(prod_db, "blog_public") == "1"  # production's own, not staging's 0
    assert option(prod_db, "cron") != 'a:1:{s:7:"version";i:2;}'  # production's schedule, not staging's
    assert sql(prod_db, "SELECT status FROM wp_actionscheduler_actions") == "pending"
    assert option(prod_db, "shop_links") == f'a:1:{{s:4:"link";s:{len(production.preview_url) + 5}:"{production.preview_url}/shop";}}'
    assert sql(prod_db, "SELECT value FROM wp_shop_settings WHERE name='layout'") == "list"
    after = dumps(prod_db)
    # Every protected table, byte for byte; production's own table kept; the plan named exactly what changed.
    for table in PROTECTED + ["wp_prod_audit"]:
        assert after[table] == before[table], table
    assert "Staging draft" not in after["wp_posts"] and "Great mug! ✓" in after["wp_comments"]
    changed = sorted(table for table in after if after[table] != before.get(table))
    assert changed == plan["changed_tables"]
    assert "wp_shop_log" in changed and "wp_options" in changed and "wp_shop_settings" in changed
    assert tree_state(prod_uploads) == uploads_before
    config = (Path(naming.root(production)) / "current" / "wp-config.php")
    assert os.readlink(config) == "../../shared/wp-config.php"
    assert os.readlink(Path(naming.root(production)) / "current" / "wp-content" / "uploads") == "../../../shared/uploads"

    # A release that fatals in production only: the promotion is swapped back by itself.
    fatal_index = ("<?php if (strpos(home_url(), '" + prod_host + "') !== false) { pressluft_no_such_function(); }\n"
                   "echo '<html><body>broken-theme ' . esc_html(get_bloginfo('name')) . '</body></html>';\n")
    deploy_theme(api_client, staging, tmp_path, [
        ("t/themes/pressluft-test/style.css", "file", THEME_CSS),
        ("t/themes/pressluft-test/index.php", "file", fatal_index),
        ("t/mu-plugins/activate-test-theme.php", "file", ACTIVATE),
    ])
    sql(staging_db, "UPDATE wp_shop_settings SET value='masonry' WHERE name='layout'")
    good_release = current(production)
    before = dumps(prod_db)
    with pytest.raises(JobError) as failure:
        promotion.promote(staging, production, release=naming.new_release_name())
    assert failure.value.code == "promotion_rolled_back", failure.value.message
    no_leftovers(production)
    assert current(production) == good_release
    status, body = fresh(production.preview_url)
    assert status == 200 and "pressluft-test-theme Omega Outlet Relaunch" in body, body[:300]
    after = dumps(prod_db)
    for table in PROTECTED + ["wp_prod_audit", "wp_shop_settings", "wp_shop_log", "wp_users"]:
        assert after[table] == before[table], table
    assert sql(prod_db, "SELECT value FROM wp_shop_settings WHERE name='layout'") == "list"
    assert tree_state(prod_uploads) == uploads_before


def test_a_link_planted_in_the_staging_release_is_refused_and_nothing_changes(api_client, shop):
    production, staging = shop
    prod_db = naming.system_name(production)
    release = Path(naming.root(staging)) / current(staging)
    escape = release / "wp-content" / "themes" / "escape"
    os.symlink("/root", escape)  # what a release built before the deploy checks could hold
    try:
        old_release, before = current(production), dumps(prod_db)
        with pytest.raises(JobError) as refused:
            promotion.plan(staging, production)
        assert refused.value.code == "unsafe_path" and "escape" in refused.value.message
        with pytest.raises(JobError) as refused:
            promotion.promote(staging, production, release=naming.new_release_name())
        assert refused.value.code == "unsafe_path"
        assert current(production) == old_release and dumps(prod_db) == before
        no_leftovers(production)
        releases = sorted(p.name for p in (Path(naming.root(production)) / "releases").iterdir())
        assert releases == [old_release.split("/")[1]]
    finally:
        escape.unlink()

    # A table name the site chose to break SQL: refused before anything is done.
    staging_db = naming.system_name(staging)
    sql(staging_db, "CREATE TABLE `wp_x``; DROP TABLE wp_posts; --` (id INT)")
    try:
        with pytest.raises(JobError) as refused:
            promotion.promote(staging, production, release=naming.new_release_name())
        assert refused.value.code == "remote_step_failed" and "name" in refused.value.message
        assert current(production) == old_release and dumps(prod_db) == before
        no_leftovers(production)
    finally:
        sql(staging_db, "DROP TABLE `wp_x``; DROP TABLE wp_posts; --`")

    # Phase by phase as a retried job runs them (each phase twice), then the swap back on its own.
    sql(staging_db, "UPDATE wp_options SET option_value='Phase Probe' WHERE option_name='blogname'")
    old_release, before = current(production), dumps(prod_db)
    release = naming.new_release_name()
    for phase in ("prepare", "prepare", "switch", "switch"):
        node_ops.promotion_phase(staging, production, phase, release=release)
    assert current(production) == f"releases/{release}"
    assert option(prod_db, "blogname") == "Phase Probe"
    assert node_ops.promotion_phase(staging, production, "revert")["reverted"] == ["tables", "release"]
    assert node_ops.promotion_phase(staging, production, "revert")["reverted"] == []
    assert current(production) == old_release and dumps(prod_db) == before
    no_leftovers(production)
    assert not (Path(naming.root(production)) / "releases" / release).exists()

    # Without the link, the promotion goes through.
    promotion.promote(staging, production, release=naming.new_release_name())
    no_leftovers(production)
    assert Job.objects.filter(job_type="env_promote").count() == 0  # the mechanics need no job of their own
