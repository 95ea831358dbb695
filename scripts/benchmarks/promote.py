"""scripts/bench promote: promoting a staging environment into production,
the promotion mechanics (apps/environments/promotion.promote: the node
program env_promote.py over SSH, phase by phase, with the health check)
against a floor on the node in the same run.

The site has a few thousand posts (protected: they stay) and a plugin table
of its own with tens of thousands of rows naming the site's URL (moved and
rewritten), cloned to staging through the panel's job.

- panel_s_p50: median time of ``promotion.promote`` (prepare: release linked,
  non-protected tables dumped and loaded beside the live ones, URLs
  rewritten; switch: one RENAME TABLE and ``current``; health check; finish);
- floor_s_p50: in the same run, the plain work on the node: ``mariadb-dump``
  of the same tables piped into a scratch database, ``cp -al`` of the
  release and a ``ln -sfn`` (no rewrite, no swap, no checks);
- plan_s_p50: the read-only plan (every table of both sides hashed, the
  releases compared);
- ratio: panel / floor. The pre-promotion backup is the env_promote job's
  step, timed by ``scripts/bench backup``, not here.

BENCH_POSTS (default 3000), BENCH_PLUGIN_ROWS (default 50000) and
BENCH_PROMOTIONS (default 3) set the sizes.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from scripts.benchmarks import node_support
from scripts.benchmarks.queue import Workers, say

POSTS = int(os.environ.get("BENCH_POSTS", "3000"))
PLUGIN_ROWS = int(os.environ.get("BENCH_PLUGIN_ROWS", "50000"))
PROMOTIONS = int(os.environ.get("BENCH_PROMOTIONS", "3"))


def fill(environment) -> None:
    from apps.environments import naming

    name, url = naming.system_name(environment), environment.preview_url
    sql = (
        f"INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt,"
        f" post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, guid,"
        f" post_type) SELECT 1, NOW(), NOW(), CONCAT('Read <a href=\"{url}/?p=', seq, '\">more</a>'),"
        f" CONCAT('Post ', seq), '', 'publish', CONCAT('post-', seq), '', '', NOW(), NOW(), '',"
        f" CONCAT('{url}/?p=', seq), 'post' FROM seq_1_to_{POSTS};\n"
        "CREATE TABLE wp_bench_plugin (id INT PRIMARY KEY, link TEXT, data TEXT) DEFAULT CHARSET=utf8mb4;\n"
        f"INSERT INTO wp_bench_plugin SELECT seq, CONCAT('{url}/item/', seq), REPEAT('x', 200) FROM seq_1_to_{PLUGIN_ROWS};\n"
    )
    subprocess.run(["mariadb", "--batch", name], input=sql, text=True, check=True)


def moved_tables(staging, production) -> list[str]:
    from apps.environments import naming
    from apps.environments.remote import promotion_presets

    out = subprocess.run(["mariadb", "--batch", "--skip-column-names", naming.system_name(staging), "-e",
                          "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'"], capture_output=True, text=True,
                         check=True).stdout
    tables = [line.split("\t")[0] for line in out.splitlines() if line.startswith("wp_")]
    protected = set(promotion_presets.protected_tables(tables, "wp_", staging.promotion_preset))
    return [table for table in tables if table not in protected]


def floor_copy(staging, production, tables: list[str]) -> float:
    from apps.environments import naming

    source_root = Path(naming.root(staging))
    target = Path(f"/var/tmp/pressluft-bench-floor-{uuid.uuid4().hex[:8]}")
    database = f"benchfloor{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    target.mkdir()
    subprocess.run(["cp", "-al", str(source_root / os.readlink(source_root / "current")), str(target / "release")],
                   check=True)
    subprocess.run(["mariadb", "-e", f"CREATE DATABASE {database}"], check=True)
    dump = subprocess.Popen(["mariadb-dump", "--single-transaction", "--quick", naming.system_name(staging), *tables],
                            stdout=subprocess.PIPE)
    subprocess.run(["mariadb", database], stdin=dump.stdout, check=True)
    dump.stdout.close()
    if dump.wait() != 0:
        sys.exit("bench: mariadb-dump failed")
    os.symlink("release", target / "current.new")
    os.replace(target / "current.new", target / "current")
    elapsed = time.perf_counter() - started
    shutil.rmtree(target)
    subprocess.run(["mariadb", "-e", f"DROP DATABASE {database}"], check=True)
    return elapsed


def main():
    node_support.setup_django()
    from apps.environments import naming, promotion
    from apps.environments.models import Environment
    from apps.jobs import runner
    from apps.jobs.models import Job

    node_support.local_node()
    client = node_support.api_client()
    production = node_support.created_site("Promote bench", "promote")
    fill(production)
    say(f"production: {POSTS} posts, a plugin table of {PLUGIN_ROWS} rows")

    with Workers("runworker", node_support.LOG_DIR) as workers:
        node_support.wait_for_worker(workers)
        response = client.post(f"/api/sites/{production.site_id}/environments",
                               {"name": "Staging", "slug": "staging", "type": "staging",
                                "promotion_preset": "commerce-protect"}, format="json")
        if response.status_code != 202:
            sys.exit(f"bench: clone answered {response.status_code}: {response.content!r}")
        job_id = response.json()["job_id"]
        node_support.wait_until(lambda: node_support.job_ended(job_id), 900, interval=0.05)
        job = Job.objects.get(pk=job_id)
        if job.status != "succeeded":
            sys.exit(f"bench: env_create {job.status}: {job.error_code} {job.error_message}")
    staging = Environment.objects.get(pk=job.environment_id)
    production.refresh_from_db()
    tables = moved_tables(staging, production)
    say(f"staging cloned; {len(tables)} tables move on each promotion")

    panel, floor, plans = [], [], []
    for index in range(PROMOTIONS):
        subprocess.run(["mariadb", naming.system_name(staging), "-e",
                        f"UPDATE wp_bench_plugin SET data = REPEAT('{index % 10}', 200) WHERE id % 10 = 0"], check=True)
        started = time.perf_counter()
        plan = promotion.plan(staging, production)
        plans.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = promotion.promote(staging, production, release=naming.new_release_name())
        panel.append(time.perf_counter() - started)
        floor.append(floor_copy(staging, production, tables))
        remaining = sum((result["url_rewrite"].get("remaining") or {}).values())
        say(f"promotion {index + 1}/{PROMOTIONS}: panel {panel[-1]:.2f} s, floor {floor[-1]:.2f} s, "
            f"plan {plans[-1]:.2f} s ({len(plan['changed_tables'])} tables to change), "
            f"rows rewritten {result['url_rewrite'].get('rows_changed')}, old URL left {remaining}; "
            f"on the node: {result['timings']}")

    runner.run_job(client.delete(f"/api/sites/{production.site_id}").json()["job_id"])
    panel_p50, floor_p50 = statistics.median(panel), statistics.median(floor)
    print(
        f"BENCH promote posts={POSTS} plugin_rows={PLUGIN_ROWS} promotions={PROMOTIONS} panel_s_p50={panel_p50:.2f} "
        f"floor_s_p50={floor_p50:.2f} plan_s_p50={statistics.median(plans):.2f} ratio={panel_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
