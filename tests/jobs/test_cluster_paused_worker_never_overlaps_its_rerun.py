"""A worker process paused (SIGSTOP) in the middle of a job for longer than
the lost-worker limit, then resumed while the job runs again elsewhere: the
claim is a lease, so the paused run stops at its next step and does nothing
more. Judged from a side effect outside the database (a file the handler
appends to), not from the database's own fenced writes."""

import os
import signal
import time

import pytest

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import JobLogLine
from tests.jobs.support import wait_until

pytestmark = pytest.mark.cluster


def effects_of(path):
    if not path.exists():
        return []
    return [tuple(int(part) for part in line.split()) for line in path.read_text().splitlines() if line]


def test_a_paused_worker_never_runs_beside_the_rerun_of_its_job(make_site, start_workers, tmp_path):
    workers = start_workers(
        1,
        PRESSLUFT_WORKERS=2,
        PRESSLUFT_JOB_SWEEP_INTERVAL=1,
        PRESSLUFT_JOB_LOST_AFTER=4,
        PRESSLUFT_JOB_HEARTBEAT_INTERVAL=1,
    )
    site, environment = make_site()
    effects = tmp_path / "effects"
    job = services.enqueue_job("test_ticks", environment=environment,
                               payload={"path": str(effects), "ticks": 20, "interval": 0.5})

    def describe():
        job.refresh_from_db()
        log = "\n".join(f"{line.created_at:%H:%M:%S.%f} {line.message}" for line in JobLogLine.objects.filter(job=job))
        return f"job {job.status} attempt {job.attempt_count}\neffects {effects_of(effects)}\n{log}\n{workers.tail()}"

    wait_until(lambda: len(effects_of(effects)) >= 2, 60, describe)  # about a second into the job
    victim = effects_of(effects)[0][1]
    os.kill(victim, signal.SIGSTOP)
    try:
        # The sweeper gives the job to the other worker process; let the rerun get well under way.
        wait_until(lambda: any(attempt == 1 for attempt, _, _ in effects_of(effects)), 60, describe, interval=0.2)
        time.sleep(2)
    finally:
        os.kill(victim, signal.SIGCONT)

    wait_until(lambda: job.refresh_from_db() or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 90, describe)
    assert (job.status, job.attempt_count) == (JobStatus.SUCCEEDED, 1), describe()
    runs = effects_of(effects)
    stale = [at for attempt, _, at in runs if attempt == 0]
    rerun = [at for attempt, _, at in runs if attempt == 1]
    assert len(rerun) == 20, describe()
    assert max(stale) < min(rerun), f"the paused run went on beside the rerun: {describe()}"
    assert {pid for attempt, pid, _ in runs if attempt == 0} == {victim}
    assert victim not in {pid for attempt, pid, _ in runs if attempt == 1}
    # The resumed worker is still a working member of the cluster.
    assert workers.alive(), workers.tail()
