"""A running job whose heartbeat went stale (its worker died) is requeued
and run again; it fails instead when its attempts are used up or it is past
its timeout, and ends cancelled if an operator asked for that."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.core.choices import LifecycleStatus
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.jobs.runner import run_job
from tests.jobs.support import clear_dispatched, dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed_then_silent(environment, **row):
    job = services.enqueue_job("test_record", environment=environment)
    if row:
        Job.objects.filter(pk=job.pk).update(**row)
    claim = services.claim_job(job.pk)
    assert claim is not None
    stale = timezone.now() - timedelta(seconds=settings.JOB_LOST_AFTER + 5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    return job


def _reload(*objects):
    for obj in objects:
        obj.refresh_from_db()


def test_job_of_a_dead_worker_is_requeued_and_run_again(make_site):
    site, environment = make_site()
    job = _claimed_then_silent(environment)
    clear_dispatched()

    recovered = services.recover_lost_jobs()

    assert [j.pk for j in recovered] == [job.pk]
    _reload(job, site, environment)
    assert (job.status, job.error_code, job.run_after) == (JobStatus.QUEUED, "worker_lost", None)
    assert (job.locked_by, job.claim_token, job.heartbeat_at) == (None, None, None)
    assert (site.status, environment.status) == (LifecycleStatus.ACTIVE, LifecycleStatus.ACTIVE)
    assert dispatched_job_ids() == [str(job.pk)], "it is run again without waiting for the next sweep"

    assert run_job(str(job.pk)) == JobStatus.SUCCEEDED
    _reload(job)
    assert (job.attempt_count, job.error_code) == (1, None)


def test_job_with_a_fresh_heartbeat_is_left_alone(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    claim = services.claim_job(job.pk)

    assert services.recover_lost_jobs() == []

    _reload(job)
    assert (job.status, job.claim_token) == (JobStatus.RUNNING, claim.token)


def test_lost_job_with_no_attempts_left_fails(make_site):
    site, environment = make_site()
    job = _claimed_then_silent(environment, max_attempts=1, attempt_count=1)

    services.recover_lost_jobs()

    _reload(job, site, environment)
    assert (job.status, job.error_code, job.attempt_count) == (JobStatus.FAILED, "worker_lost", 1)
    assert job.finished_at is not None
    assert (site.status, environment.status) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED)


def test_lost_job_past_its_timeout_fails_as_timed_out(make_site):
    site, environment = make_site()
    job = _claimed_then_silent(environment)
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=job.timeout_seconds + 10))

    services.recover_lost_jobs()

    _reload(job, site)
    assert (job.status, job.error_code) == (JobStatus.FAILED, "job_timeout")
    assert site.status == LifecycleStatus.FAILED


def test_lost_job_that_was_asked_to_stop_ends_cancelled(make_site):
    site, environment = make_site()
    job = _claimed_then_silent(environment)
    services.cancel_job(job.pk)

    services.recover_lost_jobs()

    _reload(job, site)
    assert job.status == JobStatus.CANCELLED
    assert site.status == LifecycleStatus.ACTIVE
