"""A retryable JobError requeues the job with run_after backoff (1 min, then
5 min, then 15 min), counting each retry in attempt_count (SPEC: requeue =
attempts + 1); after max_attempts retries (3 by default) the next retryable
error fails the job, and so its site and environment."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.choices import LifecycleStatus
from apps.jobs import dispatch, services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job, JobLogLine
from apps.jobs.runner import run_job
from tests.jobs.support import clear_dispatched, dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)

UNREACHABLE = {"code": "node_unreachable", "message": "ssh: connection timed out"}


def _backoff_seconds(job, before):
    return (job.run_after - before).total_seconds()


def _make_due(job):
    """Pretend the backoff has passed (and the last dispatch is long ago)."""
    past = timezone.now() - timedelta(minutes=20)
    Job.objects.filter(pk=job.pk).update(run_after=past, last_dispatched_at=past)


def test_retryable_error_requeues_with_growing_backoff_then_fails(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_fail", environment=environment, payload=UNREACHABLE)
    assert job.max_attempts == 3

    before = timezone.now()
    assert run_job(str(job.pk)) == JobStatus.QUEUED
    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert (job.status, job.attempt_count, job.error_code) == (JobStatus.QUEUED, 1, "node_unreachable")
    assert job.error_message == UNREACHABLE["message"]
    assert 60 <= _backoff_seconds(job, before) < 70
    assert job.finished_at is None and job.claim_token is None
    # Between attempts nothing runs on the site: it is active again, not failed.
    assert (site.status, environment.status) == (LifecycleStatus.ACTIVE, LifecycleStatus.ACTIVE)

    assert run_job(str(job.pk)) == "not-claimed", "a job is not run before its backoff is over"
    job.refresh_from_db()
    assert job.attempt_count == 1

    _make_due(job)
    before = timezone.now()
    assert run_job(str(job.pk)) == JobStatus.QUEUED
    job.refresh_from_db()
    assert (job.status, job.attempt_count) == (JobStatus.QUEUED, 2)
    assert 300 <= _backoff_seconds(job, before) < 310

    _make_due(job)
    before = timezone.now()
    assert run_job(str(job.pk)) == JobStatus.QUEUED
    job.refresh_from_db()
    assert (job.status, job.attempt_count) == (JobStatus.QUEUED, 3)
    assert 900 <= _backoff_seconds(job, before) < 910

    _make_due(job)
    assert run_job(str(job.pk)) == JobStatus.FAILED
    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert (job.status, job.attempt_count, job.error_code) == (JobStatus.FAILED, 3, "node_unreachable")
    assert job.error_message == UNREACHABLE["message"]
    assert job.finished_at is not None
    assert (site.status, environment.status) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED)
    assert UNREACHABLE["message"] in site.status_reason

    messages = list(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert sum("(will retry)" in message for message in messages) == 3
    assert sum(message.startswith("run ") for message in messages) == 4


def test_later_retries_keep_the_fifteen_minute_backoff(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_fail", environment=environment, payload=UNREACHABLE)
    Job.objects.filter(pk=job.pk).update(max_attempts=4)
    waits = []
    for _ in range(4):
        before = timezone.now()
        assert run_job(str(job.pk)) == JobStatus.QUEUED
        job.refresh_from_db()
        waits.append(round(_backoff_seconds(job, before) / 60))
        _make_due(job)

    assert waits == [1, 5, 15, 15]
    assert run_job(str(job.pk)) == JobStatus.FAILED


def test_sweep_dispatches_a_retry_once_its_backoff_is_over(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_fail", environment=environment, payload=UNREACHABLE)
    assert run_job(str(job.pk)) == JobStatus.QUEUED
    clear_dispatched()
    Job.objects.filter(pk=job.pk).update(last_dispatched_at=timezone.now() - timedelta(minutes=5))

    assert dispatch.dispatch_due_jobs() == 0, "still inside its backoff"
    _make_due(job)
    assert dispatch.dispatch_due_jobs() == 1
    assert dispatched_job_ids() == [str(job.pk)]
