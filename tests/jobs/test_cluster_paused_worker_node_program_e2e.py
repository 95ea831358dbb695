"""A worker process paused (SIGSTOP) while its job's real node program runs
on the local node, for longer than the lost-worker limit: the sweeper runs
the job again in another process, and the rerun's program waits on the
node's lock for the environment until the stale one has ended — the two
never run at the same time. Judged on the node: the environment's own code
(a slow must-use plugin, loaded by each WordPress call ``env_health.py``
makes) records when it ran."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.environments import naming
from apps.jobs import runner, services
from apps.jobs.choices import JobStatus
from apps.jobs.models import JobLogLine
from apps.sites.models import Site
from tests.jobs.support import wait_until
from tests.nodes.fixtures import (  # noqa: F401 - fixtures
    firewall_never_loaded,
    fresh_ssh_connections,
    local_node,
    node_sshd,
    panel_key,
)
from tests.nodes.support import job_log

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

# Each WordPress load by the node's command-line helper takes this long: env_health.py makes one
# (installed and database answered by the same load).
SLOW_SECONDS = 6
SLOW_PLUGIN = """<?php
// A slow site, for the test: each command-line load of WordPress records its span.
if (PHP_SAPI === 'cli') {
    $started = sprintf('%.6f', microtime(true));
    sleep(@@seconds@@);
    file_put_contents('@@record@@', getmypid() . " $started " . sprintf('%.6f', microtime(true)) . "\\n", FILE_APPEND | LOCK_EX);
}
"""


@pytest.fixture
def slow_environment(api_client, local_node):  # noqa: F811 - fixtures
    """A WordPress site on the local node whose code sleeps on each helper call and records it."""
    response = api_client.post("/api/sites", {"name": "Slow Health", "slug": "slow-health"}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    site = Site.objects.get(slug="slow-health")
    environment = site.environments.get(environment_type="production")
    record_dir = Path(tempfile.mkdtemp(prefix="pressluft-slow-health."))
    record_dir.chmod(0o755)
    record = record_dir / "calls"
    record.touch(mode=0o666)
    record.chmod(0o666)  # the site's own user writes it
    plugin = Path(naming.root(environment)) / "current" / "wp-content" / "mu-plugins" / "zz-slow-health.php"
    plugin.write_text(SLOW_PLUGIN.replace("@@seconds@@", str(SLOW_SECONDS)).replace("@@record@@", str(record)))
    plugin.chmod(0o644)
    try:
        yield environment, record
    finally:
        plugin.unlink(missing_ok=True)
        if Site.objects.filter(pk=site.pk).exists():
            runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
        shutil.rmtree(record_dir, ignore_errors=True)


def calls(record: Path) -> list[tuple[int, float, float]]:
    if not record.exists():
        return []
    return [(int(pid), float(start), float(end))
            for pid, start, end in (line.split() for line in record.read_text().splitlines() if line)]


def runs(path: Path) -> list[tuple[int, int]]:
    """(attempt, worker pid) per run of the job, from what the handler wrote first."""
    if not path.exists():
        return []
    return [(int(attempt), int(pid)) for attempt, pid, _ in (line.split() for line in path.read_text().splitlines())]


def health_programs() -> set[int]:
    program = f"{settings.NODE_LIB_DIR}/env_health.py"
    found = subprocess.run(["pgrep", "-f", program], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def test_a_paused_workers_node_program_and_the_rerun_never_run_together(slow_environment, start_workers, tmp_path):
    environment, record = slow_environment
    workers = start_workers(
        1,
        PRESSLUFT_WORKERS=2,
        PRESSLUFT_JOB_SWEEP_INTERVAL=1,
        PRESSLUFT_JOB_LOST_AFTER=4,
        PRESSLUFT_JOB_HEARTBEAT_INTERVAL=1,
        PRESSLUFT_NODE_LOCK_WAIT=90,
    )
    run_file = tmp_path / "runs"
    job = services.enqueue_job("test_env_health", environment=environment, payload={"runs": str(run_file)})

    def describe():
        job.refresh_from_db()
        log = "\n".join(f"{line.created_at:%H:%M:%S.%f} {line.message}" for line in JobLogLine.objects.filter(job=job))
        return (f"job {job.status} attempt {job.attempt_count} {job.error_code} {job.error_message}\n"
                f"runs {runs(run_file)}\ncalls {calls(record)}\n{log}\n{workers.tail()}")

    # The program runs: its first WordPress load is under way once env_health.py is up and the run is known.
    wait_until(lambda: runs(run_file) and health_programs(), 120, describe, interval=0.1)
    time.sleep(1)
    ((attempt, victim),) = runs(run_file)
    assert attempt == 0
    stale_programs = health_programs()
    os.kill(victim, signal.SIGSTOP)
    side_by_side = set()
    try:
        # The sweeper gives the job to the other worker process; its program starts and meets the lock.
        def rerun_program_started():
            programs = health_programs()
            if programs - stale_programs and programs & stale_programs:
                side_by_side.update(programs)
            return len(runs(run_file)) == 2 and programs - stale_programs

        wait_until(rerun_program_started, 60, describe, interval=0.1)
        time.sleep(2)
    finally:
        os.kill(victim, signal.SIGCONT)

    wait_until(lambda: job.refresh_from_db() or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 120,
               describe, interval=0.2)
    assert (job.status, job.attempt_count) == (JobStatus.SUCCEEDED, 1), describe()
    assert job.result.get("installed") and job.result.get("database"), describe()
    assert runs(run_file)[1][1] != victim
    spans = sorted((start, end) for _, start, end in calls(record))
    assert len(spans) >= 2, describe()  # the stale program's load and the rerun's
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two programs loaded the environment's WordPress at once: {describe()}"
    # The case this is about did happen: the rerun's program was up while the stale one still ran.
    assert side_by_side, f"the rerun's program never met the stale one: {describe()}"
    assert workers.alive(), workers.tail()
