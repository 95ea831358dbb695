"""scripts/bench clone: cloning a site with a few thousand posts and a few
hundred MB of uploads, through the panel against a plain copy on the node.

- panel_s_p50: median time from ``POST /api/sites/{id}/environments`` until
  the clone's job succeeded (its own user, pool, database, copied files and
  database, URLs rewritten, health check);
- floor_s_p50: in the same run, a plain copy of the same data on the node:
  ``cp -a`` of the release and the uploads, ``mariadb-dump | mariadb`` of the
  database (no rewrite, no checks);
- ratio: panel / floor.

BENCH_POSTS (default 3000), BENCH_UPLOAD_MB (default 200) and BENCH_CLONES
(default 3) set the sizes.
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
UPLOAD_MB = int(os.environ.get("BENCH_UPLOAD_MB", "200"))
CLONES = int(os.environ.get("BENCH_CLONES", "3"))


def fill(environment) -> None:
    """Posts that mention the site's URL (so the rewrite has work) and uploads."""
    from apps.environments import naming

    name = naming.system_name(environment)
    url = environment.preview_url
    sql = (
        f"INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt,"
        f" post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, guid,"
        f" post_type) SELECT 1, NOW(), NOW(), CONCAT('Read <a href=\"{url}/?p=', seq, '\">more</a> at {url}'),"
        f" CONCAT('Post ', seq), '', 'publish', CONCAT('post-', seq), '', '', NOW(), NOW(), '',"
        f" CONCAT('{url}/?p=', seq), 'post' FROM seq_1_to_{POSTS};"
    )
    subprocess.run(["mariadb", "--batch", name], input=sql, text=True, check=True)
    uploads = Path(naming.root(environment)) / "shared" / "uploads" / "2026" / "11"
    uploads.mkdir(parents=True, exist_ok=True)
    for index in range(UPLOAD_MB):
        (uploads / f"photo-{index:04d}.jpg").write_bytes(os.urandom(1024 * 1024))
    subprocess.run(["chown", "-R", f"{name}:www-data", str(uploads.parent.parent)], check=True)


def plain_copy(environment) -> float:
    from apps.environments import naming

    root = Path(naming.root(environment))
    target = Path(f"/var/tmp/pressluft-bench-floor-{uuid.uuid4().hex[:8]}")
    database = f"benchfloor{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    target.mkdir()
    subprocess.run(["cp", "-a", str((root / "current").resolve()), str(target / "release")], check=True)
    subprocess.run(["cp", "-a", str(root / "shared" / "uploads"), str(target / "uploads")], check=True)
    subprocess.run(["mariadb", "-e", f"CREATE DATABASE {database}"], check=True)
    dump = subprocess.Popen(["mariadb-dump", "--single-transaction", "--quick", naming.system_name(environment)],
                            stdout=subprocess.PIPE)
    subprocess.run(["mariadb", database], stdin=dump.stdout, check=True)
    dump.stdout.close()
    if dump.wait() != 0:
        sys.exit("bench: mariadb-dump failed")
    elapsed = time.perf_counter() - started
    shutil.rmtree(target)
    subprocess.run(["mariadb", "-e", f"DROP DATABASE {database}"], check=True)
    return elapsed


def main():
    node_support.setup_django()
    from apps.jobs import runner
    from apps.jobs.models import Job

    node_support.local_node()
    client = node_support.api_client()
    production = node_support.created_site("Clone bench", "clone")
    fill(production)
    say(f"source: {POSTS} posts, {UPLOAD_MB} MB of uploads")

    panel, floor = [], []
    with Workers("runworker", node_support.LOG_DIR) as workers:
        node_support.wait_for_worker(workers)
        for index in range(CLONES):
            started = time.perf_counter()
            response = client.post(
                f"/api/sites/{production.site_id}/environments",
                {"name": f"Clone {index}", "slug": f"clone-{index}", "type": "clone", "promotion_preset": "content-protect"},
                format="json",
            )
            if response.status_code != 202:
                sys.exit(f"bench: clone answered {response.status_code}: {response.content!r}")
            job_id = response.json()["job_id"]
            node_support.wait_until(lambda: node_support.job_ended(job_id), 900, interval=0.05)
            panel.append(time.perf_counter() - started)
            job = Job.objects.get(pk=job_id)
            if job.status != "succeeded":
                sys.exit(f"bench: env_create {job.status}: {job.error_code} {job.error_message}")
            rewrite = job.result.get("url_rewrite", {})
            remaining = sum((rewrite.get("remaining") or {}).values())
            floor.append(plain_copy(production))
            say(f"clone {index + 1}/{CLONES}: panel {panel[-1]:.2f} s, floor {floor[-1]:.2f} s, "
                f"rows rewritten {rewrite.get('rows_changed')}, old URL left {remaining}")
            delete = client.delete(f"/api/environments/{job.environment_id}")
            delete_id = delete.json()["job_id"]
            node_support.wait_until(lambda: node_support.job_ended(delete_id), 300)

    runner.run_job(client.delete(f"/api/sites/{production.site_id}").json()["job_id"])
    panel_p50, floor_p50 = statistics.median(panel), statistics.median(floor)
    print(
        f"BENCH clone posts={POSTS} upload_mb={UPLOAD_MB} clones={CLONES} panel_s_p50={panel_p50:.2f} "
        f"floor_s_p50={floor_p50:.2f} ratio={panel_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
