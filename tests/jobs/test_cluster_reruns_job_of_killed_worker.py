"""A worker process killed (SIGKILL) in the middle of a job: the sweeper sees
the stale heartbeat, requeues the job, another worker process runs it again
and it succeeds."""

import os
import signal

import pytest

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import JobLogLine
from tests.jobs.support import wait_until

pytestmark = pytest.mark.cluster


def test_job_of_a_killed_worker_process_runs_again_and_succeeds(make_site, start_workers):
    workers = start_workers(
        1,
        PRESSLUFT_WORKERS=2,
        PRESSLUFT_JOB_SWEEP_INTERVAL=1,
        PRESSLUFT_JOB_LOST_AFTER=4,
        PRESSLUFT_JOB_HEARTBEAT_INTERVAL=1,
    )
    site, environment = make_site()
    job = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 4})

    def describe():
        job.refresh_from_db()
        log = "\n".join(
            f"{line.created_at:%H:%M:%S.%f} {line.message}" for line in JobLogLine.objects.filter(job=job)
        )
        return f"job {job.status} attempt {job.attempt_count} by {job.locked_by}\njob log:\n{log}\n{workers.tail()}"

    wait_until(lambda: JobLogLine.objects.filter(job=job, message__startswith="sleeping").exists(), 60, describe)
    job.refresh_from_db()
    assert (job.status, job.attempt_count) == (JobStatus.RUNNING, 0), describe()
    victim = int(job.locked_by.rsplit(":", 1)[1])

    os.kill(victim, signal.SIGKILL)

    owners = set()

    def ended():
        job.refresh_from_db()
        if job.locked_by:
            owners.add(job.locked_by)
        return job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    wait_until(ended, 90, describe, interval=0.2)
    assert job.status == JobStatus.SUCCEEDED, describe()
    assert job.attempt_count == 1, describe()  # one retry
    assert job.locked_by is None, "released when it finished"
    assert {int(owner.rsplit(":", 1)[1]) for owner in owners} - {victim}, f"a new process claimed it: {owners}"
    rerun_by = [
        int(line.split("pid ")[1])
        for line in JobLogLine.objects.filter(job=job, message__startswith="sleeping").values_list("message", flat=True)
    ]
    assert len(rerun_by) == 2 and rerun_by[0] == victim and rerun_by[1] != victim, describe()
    assert workers.alive(), "the cluster replaced its dead worker process and kept going"
    assert "sweep failed" not in workers.logs(), workers.logs()
