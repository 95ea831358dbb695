"""scripts/bench promote: promoting a staging environment into production
through the panel (``POST /api/environments/{id}/promote``: API, queue,
worker, the env_promote job to its end) against a floor on the node in the
same run, into an S3 server on loopback for the job's pre-promotion backup
(moto's server, as ``scripts/bench backup``).

The site (commerce-protect) has a few thousand posts (protected: they never
move) and the non-protected data a real shop or blog brings along:

- the options table with a few hundred plugin options besides WordPress's
  own, one in ten of them PHP-serialized settings that hold the site's URL;
- a few hundred users with their usermeta (ten rows each);
- a plugin's table of BENCH_PLUGIN_ROWS rows (default 20 000: a redirect or
  statistics table of a busy site) where only one row in twenty mentions the
  site's URL (the rest are paths, referrers, counters).

Staging is cloned from production through the panel; before each promotion
staging is refreshed from production and its drift checked (both jobs through
the panel, not timed), then a setting and a tenth of the plugin's rows change
in staging.

- promote_s_p50: median time from the POST until the job ended, without its
  pre-promotion backup step (drift checked again on the node, the release
  linked, the tables dumped and loaded beside the live ones, URLs rewritten,
  one RENAME TABLE with the release switch, health check, finish);
- backup_s_p50: the job's ``pre-promotion full backup`` step (its own time,
  from the job log), reported beside it;
- floor_s_p50: in the same run, the plain work on the node: ``mariadb-dump``
  of the source's non-protected tables piped into a scratch database, ``cp
  -al`` of the release and a link switched (no drift check, no rewrite, no
  swap, no health check);
- ratio: promote_s_p50 / floor_s_p50 (goal <= 1.3).

BENCH_SHOW_STEPS=1 prints every promotion job's log with each line's time.
BENCH_POSTS (default 3000), BENCH_PLUGIN_ROWS and BENCH_PROMOTIONS
(default 3) set the sizes.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from scripts.benchmarks import node_support
from scripts.benchmarks.backup import MotoServer, configure_storage, show_steps
from scripts.benchmarks.queue import Workers, say

POSTS = int(os.environ.get("BENCH_POSTS", "3000"))
PLUGIN_ROWS = int(os.environ.get("BENCH_PLUGIN_ROWS", "20000"))
PROMOTIONS = int(os.environ.get("BENCH_PROMOTIONS", "3"))
PLUGIN_OPTIONS = 400
USERS = 300


def fill(environment) -> None:
    from apps.environments import naming

    name, url = naming.system_name(environment), environment.preview_url
    setting = f'a:3:{{s:3:"url";s:{len(url) + 5}:"{url}/shop";s:4:"mode";s:4:"live";s:5:"count";i:7;}}'
    sql = (
        f"INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt,"
        f" post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, guid,"
        f" post_type) SELECT 1, NOW(), NOW(), CONCAT('Read <a href=\"{url}/?p=', seq, '\">more</a>'),"
        f" CONCAT('Post ', seq), '', 'publish', CONCAT('post-', seq), '', '', NOW(), NOW(), '',"
        f" CONCAT('{url}/?p=', seq), 'post' FROM seq_1_to_{POSTS};\n"
        "INSERT INTO wp_options (option_name, option_value, autoload) SELECT CONCAT('bench_plugin_', seq),"
        f" IF(seq % 10 = 0, '{setting}', REPEAT(CONCAT('v', seq), 20)), IF(seq % 3 = 0, 'yes', 'no')"
        f" FROM seq_1_to_{PLUGIN_OPTIONS};\n"
        "INSERT INTO wp_users (user_login, user_pass, user_nicename, user_email, user_url, user_registered,"
        " user_activation_key, user_status, display_name) SELECT CONCAT('customer', seq), MD5(seq),"
        " CONCAT('customer', seq), CONCAT('customer', seq, '@example.org'), '', NOW(), '', 0, CONCAT('Customer ', seq)"
        f" FROM seq_1_to_{USERS};\n"
        "INSERT INTO wp_usermeta (user_id, meta_key, meta_value) SELECT u.ID, CONCAT('bench_meta_', s.seq),"
        " REPEAT('m', 40) FROM wp_users u JOIN seq_1_to_10 s WHERE u.user_login LIKE 'customer%';\n"
        "CREATE TABLE wp_bench_plugin (id INT PRIMARY KEY, path VARCHAR(255), referrer TEXT, hits INT,"
        " data TEXT) DEFAULT CHARSET=utf8mb4;\n"
        "INSERT INTO wp_bench_plugin SELECT seq, CONCAT('/item/', seq),"
        f" IF(seq % 20 = 0, CONCAT('{url}/item/', seq - 1), CONCAT('https://search.example/?q=', seq)), seq % 97,"
        f" REPEAT('x', 200) FROM seq_1_to_{PLUGIN_ROWS};\n"
    )
    subprocess.run(["mariadb", "--batch", name], input=sql, text=True, check=True)


def moved_tables(staging) -> list[str]:
    from apps.environments import naming
    from apps.environments.remote import promotion_presets

    out = subprocess.run(["mariadb", "--batch", "--skip-column-names", naming.system_name(staging), "-e",
                          "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'"], capture_output=True, text=True,
                         check=True).stdout
    tables = [line.split("\t")[0] for line in out.splitlines() if line.startswith("wp_")]
    protected = set(promotion_presets.protected_tables(tables, "wp_", staging.promotion_preset))
    return [table for table in tables if table not in protected]


def floor_copy(staging, tables: list[str]) -> float:
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


def panel_job(client, path: str, body=None, timeout: float = 1800):
    """POST ``path``, wait for its job; (seconds from the POST to the job's end, the job)."""
    from apps.jobs.models import Job

    started = time.perf_counter()
    response = client.post(path, body, format="json")
    if response.status_code != 202:
        sys.exit(f"bench: {path} answered {response.status_code}: {response.content!r}")
    job_id = response.json()["job_id"]
    node_support.wait_until(lambda: node_support.job_ended(job_id), timeout, interval=0.05)
    elapsed = time.perf_counter() - started
    job = Job.objects.get(pk=job_id)
    if job.status != "succeeded":
        sys.exit(f"bench: {job.job_type} {job.status}: {job.error_code} {job.error_message}")
    return elapsed, job


STEP_DONE = re.compile(r"^done: (?P<name>.*) \((?P<seconds>[0-9.]+) s\)$")


def step_seconds(job) -> dict[str, float]:
    """The job's steps (``ctx.step``) and their own times, from its log."""
    found = {}
    for line in job.log_lines.order_by("seq"):
        match = STEP_DONE.match(line.message)
        if match:
            found[match["name"]] = float(match["seconds"])
    return found


def main():
    node_support.setup_django()
    from apps.environments import naming
    from apps.environments.models import Environment
    from apps.jobs import runner

    node_support.local_node()
    client = node_support.api_client()
    with MotoServer() as s3:
        configure_storage(s3.endpoint)
        production = node_support.created_site("Promote bench", "promote")
        fill(production)
        say(f"production: {POSTS} posts, {PLUGIN_OPTIONS} plugin options, {USERS} users, a plugin table of "
            f"{PLUGIN_ROWS} rows (one in twenty naming the site's URL)")
        promote_s, backup_s, floor_s = [], [], []
        with Workers("runworker", node_support.LOG_DIR) as workers:
            node_support.wait_for_worker(workers)
            _, job = panel_job(client, f"/api/sites/{production.site_id}/environments",
                               {"name": "Staging", "slug": "staging", "type": "staging",
                                "promotion_preset": "commerce-protect"}, timeout=900)
            staging = Environment.objects.get(pk=job.environment_id)
            production.refresh_from_db()
            tables = moved_tables(staging)
            say(f"staging cloned; {len(tables)} tables move on each promotion: {', '.join(tables)}")
            for index in range(PROMOTIONS):
                if index:
                    panel_job(client, f"/api/environments/{staging.pk}/refresh-from-production")
                panel_job(client, f"/api/environments/{staging.pk}/drift-check")
                subprocess.run(["mariadb", naming.system_name(staging), "-e",
                                f"UPDATE wp_bench_plugin SET data = REPEAT('{index % 10}', 200) WHERE id % 10 = 0;"
                                f"UPDATE wp_options SET option_value = 'Promoted {index}'"
                                " WHERE option_name = 'blogdescription'"], check=True)
                elapsed, job = panel_job(client, f"/api/environments/{staging.pk}/promote",
                                         {"target_environment_id": str(production.pk)})
                show_steps(job)
                steps = step_seconds(job)
                backup = next(seconds for name, seconds in steps.items()
                              if name.startswith("pre-promotion full backup"))
                promote_s.append(elapsed - backup)
                backup_s.append(backup)
                floor_s.append(floor_copy(staging, tables))
                rewrite = job.result.get("url_rewrite") or {}
                say(f"promotion {index + 1}/{PROMOTIONS}: promote {promote_s[-1]:.2f} s (+ backup {backup:.2f} s), "
                    f"floor {floor_s[-1]:.2f} s; rows rewritten {rewrite.get('rows_changed')}, "
                    f"old URL left {sum((rewrite.get('remaining') or {}).values())}")
        runner.run_job(client.delete(f"/api/sites/{production.site_id}?final_backup=false").json()["job_id"])
    promote_p50, floor_p50 = statistics.median(promote_s), statistics.median(floor_s)
    print(
        f"BENCH promote posts={POSTS} plugin_rows={PLUGIN_ROWS} promotions={PROMOTIONS} "
        f"promote_s_p50={promote_p50:.2f} backup_s_p50={statistics.median(backup_s):.2f} "
        f"floor_s_p50={floor_p50:.2f} ratio={promote_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
