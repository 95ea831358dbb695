"""An idle cluster starts a new job right after its commit, and a job blocked
by a busy site starts right after the blocking job ends: both through a
wake-up message, not the sweeper's periodic re-dispatch (set far apart here).

The bounds are generous on purpose (machines are noisy); ``scripts/bench
queue`` measures the real figures."""

import statistics

import pytest

from apps.jobs import services
from apps.jobs.choices import TERMINAL, JobStatus
from apps.jobs.models import Job
from tests.jobs.support import wait_until

pytestmark = pytest.mark.cluster

BOUND_SECONDS = 5.0


def _wait_ended(jobs, workers, timeout=60):
    def ended():
        return Job.objects.filter(pk__in=[job.pk for job in jobs], status__in=TERMINAL).count() == len(jobs)

    wait_until(ended, timeout, lambda: f"{[str(j) for j in Job.objects.filter(pk__in=[j.pk for j in jobs])]}\n{workers.tail()}")
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, f"{job}: {job.error_code} {job.error_message}"


@pytest.fixture
def idle_workers(start_workers, make_site):
    # A sweep every 10 minutes: only wake-ups can start the jobs below in time.
    workers = start_workers(1, PRESSLUFT_WORKERS=2, PRESSLUFT_JOB_SWEEP_INTERVAL=600)
    _wait_ended([services.enqueue_job("test_noop")], workers)
    return workers


def test_idle_cluster_starts_a_new_job_soon_after_commit(idle_workers, make_site):
    _site, environment = make_site()
    delays = []
    for _ in range(5):
        job = services.enqueue_job("test_record", environment=environment)
        _wait_ended([job], idle_workers)
        delays.append((job.started_at - job.created_at).total_seconds())

    assert max(delays) < BOUND_SECONDS, f"commit -> start delays: {delays} (median {statistics.median(delays)})"


def test_blocked_job_starts_soon_after_its_blocker_ends(idle_workers, make_site):
    _site, environment = make_site()
    blocker = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 2})
    blocked = services.enqueue_job("test_record", environment=environment)

    _wait_ended([blocker, blocked], idle_workers)

    assert blocked.started_at >= blocker.finished_at
    waited = (blocked.started_at - blocker.finished_at).total_seconds()
    assert waited < BOUND_SECONDS, f"blocked job started {waited:.3f} s after its blocker ended"
