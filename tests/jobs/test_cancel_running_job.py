"""Cancelling a running job asks it to stop: its handler stops at the next
safe point, the job ends cancelled and the site is active again."""

import time

import pytest

from apps.core.choices import LifecycleStatus
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job, JobLogLine
from apps.jobs.runner import run_job
from tests.jobs.support import InThread, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_running_job_stops_at_its_next_safe_point_when_cancelled(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 60})
    run = InThread(run_job, str(job.pk))
    wait_until(
        lambda: JobLogLine.objects.filter(job=job, message__startswith="sleeping").exists(),
        10,
        lambda: f"job never started: {Job.objects.get(pk=job.pk).status}",
    )
    site.refresh_from_db()
    assert site.status == LifecycleStatus.DEPLOYING

    asked = time.monotonic()
    services.cancel_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (JobStatus.RUNNING, True), "a running job is only asked to stop"

    assert run.result(timeout=15) == JobStatus.CANCELLED
    assert time.monotonic() - asked < 10
    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert (site.status, environment.status) == (LifecycleStatus.ACTIVE, LifecycleStatus.ACTIVE)
    assert JobLogLine.objects.filter(job=job, message="cancelled by an operator").exists()
