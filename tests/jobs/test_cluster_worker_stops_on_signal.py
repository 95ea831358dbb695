"""runworker stops cleanly whether the signal reaches it alone or its whole
process group (a service manager, Ctrl-C in a terminal)."""

import os
import signal

import pytest

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from tests.jobs.support import wait_until

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize(
    "signum, whole_group",
    [(signal.SIGTERM, True), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM to the group", "SIGTERM to the worker alone", "SIGINT to the group"],
)
def test_worker_stops_on_signal(start_workers, signum, whole_group):
    workers = start_workers(1, PRESSLUFT_WORKERS=1)
    job = services.enqueue_job("test_noop")
    wait_until(
        lambda: Job.objects.filter(pk=job.pk, status=JobStatus.SUCCEEDED).exists(), 60, lambda: workers.tail()
    )
    (process,) = workers.processes

    if whole_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)

    assert process.wait(15) == 0, workers.tail()
    assert "worker stopped" in workers.logs()
