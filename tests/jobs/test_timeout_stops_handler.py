"""A handler past its timeout is stopped at its next safe point and the job
fails as job_timeout; a job stuck where it cannot notice is failed by the sweep."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.choices import LifecycleStatus
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.jobs.runner import run_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_handler_is_stopped_at_its_next_checkpoint_after_the_timeout(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 60})
    Job.objects.filter(pk=job.pk).update(timeout_seconds=1)

    started = time.monotonic()
    assert run_job(str(job.pk)) == JobStatus.FAILED
    assert time.monotonic() - started < 10

    job.refresh_from_db()
    site.refresh_from_db()
    assert (job.status, job.error_code, job.attempt_count) == (JobStatus.FAILED, "job_timeout", 0)
    assert site.status == LifecycleStatus.FAILED


def test_work_that_finished_after_the_timeout_is_not_reported_as_stopped(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment, payload={"sleep": 1.5})
    Job.objects.filter(pk=job.pk).update(timeout_seconds=1)

    assert run_job(str(job.pk)) == JobStatus.SUCCEEDED

    site.refresh_from_db()
    assert site.status == LifecycleStatus.ACTIVE


def test_sweep_fails_a_job_far_past_its_timeout_whose_worker_still_beats(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    claim = services.claim_job(job.pk)
    Job.objects.filter(pk=job.pk).update(
        started_at=timezone.now() - timedelta(seconds=job.timeout_seconds + 3600), heartbeat_at=timezone.now()
    )

    assert [j.pk for j in services.fail_overdue_jobs()] == [job.pk]

    job.refresh_from_db()
    site.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "job_timeout")
    assert site.status == LifecycleStatus.FAILED
    assert services.heartbeat(job.pk, claim.token) == (False, False), "the stuck worker learns it lost the job"
