"""scripts/bench deploy: a git deploy through the panel against the same node
program run directly.

- panel_s_p50: median time from ``POST /api/environments/{id}/deploy`` until
  its job succeeded (queue, worker, SSH, fetch, build, load check, switch,
  cache purge, health check);
- floor_s_p50: in the same run, env_deploy.py run directly on the node with
  the same kind of parameters, until the page answers 200;
- ratio: panel / floor.

BENCH_DEPLOYS sets the sample size (default 5).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.benchmarks import node_support
from scripts.benchmarks.queue import Workers, say

DEPLOYS = int(os.environ.get("BENCH_DEPLOYS", "5"))


def make_repository() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="pressluft-bench-repo-"))
    scratch.chmod(0o755)  # git fetches as the node's unprivileged git account
    repo = scratch / "site.git"
    (repo / "mu-plugins").mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet", "-b", "main", str(repo)], check=True)
    for key, value in (("user.email", "bench@example.test"), ("user.name", "bench")):
        subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
    return repo


def new_commit(repo: Path, index: int) -> str:
    (repo / "mu-plugins" / "bench.php").write_text(f"<?php\n// bench release {index}\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "--quiet", "-m", f"release {index}"], check=True)
    tag = f"bench-{index}"
    subprocess.run(["git", "-C", str(repo), "tag", tag], check=True)
    return tag


def main():
    node_support.setup_django()
    from apps.environments import naming
    from apps.jobs import runner
    from apps.jobs.models import Job

    node_support.local_node()
    client = node_support.api_client()
    environment = node_support.created_site("Deploy bench", "deploy")
    repo = make_repository()

    panel, floor = [], []
    with Workers("runworker", node_support.LOG_DIR) as workers:
        node_support.wait_for_worker(workers)
        for index in range(DEPLOYS):
            tag = new_commit(repo, 2 * index)
            started = time.perf_counter()
            response = client.post(f"/api/environments/{environment.id}/deploy",
                                   {"source_type": "git", "source_ref": f"{repo}#{tag}"}, format="json")
            if response.status_code != 202:
                sys.exit(f"bench: deploy answered {response.status_code}: {response.content!r}")
            job_id = response.json()["job_id"]
            node_support.wait_until(lambda: node_support.job_ended(job_id), 300, interval=0.02)
            panel.append(time.perf_counter() - started)
            job = Job.objects.get(pk=job_id)
            if job.status != "succeeded":
                sys.exit(f"bench: env_deploy {job.status}: {job.error_code} {job.error_message}")

            tag = new_commit(repo, 2 * index + 1)
            params = {
                "system_name": naming.system_name(environment),
                "root": naming.root(environment),
                "url": environment.preview_url,
                "release": time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{index:06d}Z",
                "git": {"repository": str(repo), "ref": tag, "allow_local": True},
                "keep": 5,
            }
            started = time.perf_counter()
            node_support.run_node_program("env_deploy.py", params)
            node_support.wait_for_200(environment.preview_url, timeout=60)
            floor.append(time.perf_counter() - started)
            say(f"deploy {index + 1}/{DEPLOYS}: panel {panel[-1]:.2f} s, floor {floor[-1]:.2f} s")

    runner.run_job(client.delete(f"/api/sites/{environment.site_id}").json()["job_id"])
    panel_p50, floor_p50 = statistics.median(panel), statistics.median(floor)
    print(
        f"BENCH deploy deploys={DEPLOYS} panel_s_p50={panel_p50:.2f} floor_s_p50={floor_p50:.2f} "
        f"ratio={panel_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
