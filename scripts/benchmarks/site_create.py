"""scripts/bench site-create: how long a new site takes through the panel,
against the same node work done by a plain script.

- panel_s_p50: median time from ``POST /api/sites`` until the preview URL
  answers 200 through Nginx (API, job queue, worker, SSH, node program,
  WordPress install, health check);
- floor_s_p50: in the same run, the node program itself (env_setup.py with the
  same kind of parameters) run directly on the node with no panel, no queue
  and no SSH, until the URL answers 200;
- ratio: panel / floor.

The node is this machine, reached over SSH on loopback (scripts/bench starts
an sshd and installs the node packages). BENCH_SITES sets the sample size.
"""

import json
import os
import statistics
import sys
import time
import uuid

from scripts.benchmarks import node_support
from scripts.benchmarks.queue import Workers, say

SITES = int(os.environ.get("BENCH_SITES", "5"))


def panel_sample(client, index, workers) -> float:
    from apps.jobs.models import Job
    from apps.sites.models import Site

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    response = client.post("/api/sites", {"name": f"Bench {index}", "slug": slug}, format="json")
    if response.status_code != 202:
        sys.exit(f"bench: POST /api/sites answered {response.status_code}: {response.content!r}")
    job_id = response.json()["job_id"]
    environment = Site.objects.get(slug=slug).environments.get()
    node_support.wait_for_200(environment.preview_url, timeout=300, job_id=job_id, workers=workers)
    elapsed = time.perf_counter() - started
    job = Job.objects.get(pk=job_id)
    node_support.wait_until(lambda: Job.objects.get(pk=job_id).status in ("succeeded", "failed"), 120)
    job.refresh_from_db()
    if job.status != "succeeded":
        sys.exit(f"bench: site_create ended {job.status}: {job.error_code} {job.error_message}")
    return elapsed


def floor_sample(node, index) -> float:
    """The same node work, by hand: env_setup.py run locally with JSON on stdin."""
    from apps.environments import naming, node_ops
    from apps.environments.models import Environment

    environment = Environment(id=uuid.uuid4(), node=node, name="floor", slug="floor", environment_type="production",
                              db_password=uuid.uuid4().hex + uuid.uuid4().hex)
    environment.preview_url = naming.preview_url(environment, node)
    params = {
        "system_name": naming.system_name(environment),
        "root": naming.root(environment),
        "url": environment.preview_url,
        "release": "20260101T000000Z",
        "db_password": environment.db_password,
        "core": node_ops.core_source(),
        "files": node_ops.render_configs(environment),
        "paths": {"pool": naming.pool_path(environment), "vhost": naming.vhost_path(environment)},
        "redis": node_ops.redis_params(environment),
        "install": {"title": f"Floor {index}", "admin_user": "admin", "admin_email": "admin@localhost",
                    "admin_password": uuid.uuid4().hex},
    }
    started = time.perf_counter()
    node_support.run_node_program("env_setup.py", params)
    node_support.wait_for_200(environment.preview_url, timeout=120)
    elapsed = time.perf_counter() - started
    node_support.run_node_program(
        "env_teardown.py",
        {key: params[key] for key in ("system_name", "root", "url", "paths", "redis")},
    )
    return elapsed


def main():
    node_support.setup_django()
    from apps.sites.models import Site

    node = node_support.local_node()
    client = node_support.api_client()
    panel, floor = [], []
    with Workers("runworker", node_support.LOG_DIR) as workers:
        node_support.wait_for_worker(workers)
        for index in range(SITES):
            # Interleaved, so both see the same machine state.
            panel.append(panel_sample(client, index, workers))
            floor.append(floor_sample(node, index))
            say(f"site {index + 1}/{SITES}: panel {panel[-1]:.2f} s, floor {floor[-1]:.2f} s")
        for site in Site.objects.filter(slug__startswith="bench-"):
            response = client.delete(f"/api/sites/{site.id}")
            job_id = response.json()["job_id"]
            node_support.wait_until(lambda: node_support.job_ended(job_id), 300)
    panel_p50, floor_p50 = statistics.median(panel), statistics.median(floor)
    say(json.dumps({"panel_s": panel, "floor_s": floor}))
    print(
        f"BENCH site-create sites={SITES} panel_s_p50={panel_p50:.2f} floor_s_p50={floor_p50:.2f} "
        f"ratio={panel_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
