"""Jobs of one site start in the order they were asked for."""

import pytest

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.runner import run_job
from tests.jobs.support import clear_dispatched, dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)


def test_younger_job_waits_for_older_jobs_of_its_site(make_site):
    _site, environment = make_site()
    first, second, third = (services.enqueue_job("test_record", environment=environment) for _ in range(3))

    assert run_job(str(third.pk)) == "not-claimed"
    assert run_job(str(second.pk)) == "not-claimed"
    clear_dispatched()
    assert run_job(str(first.pk)) == JobStatus.SUCCEEDED
    # Only the next in line is woken: the third could not start anyway.
    assert dispatched_job_ids() == [str(second.pk)]
    assert run_job(str(third.pk)) == "not-claimed"
    assert run_job(str(second.pk)) == JobStatus.SUCCEEDED
    assert run_job(str(third.pk)) == JobStatus.SUCCEEDED

    for job in (first, second, third):
        job.refresh_from_db()
    assert first.finished_at <= second.started_at
    assert second.finished_at <= third.started_at


def test_cancelling_the_oldest_queued_job_wakes_the_next(make_site):
    _site, environment = make_site()
    first, second = (services.enqueue_job("test_record", environment=environment) for _ in range(2))
    assert run_job(str(second.pk)) == "not-claimed"

    clear_dispatched()
    services.cancel_job(first.pk)

    assert dispatched_job_ids() == [str(second.pk)]
    assert run_job(str(second.pk)) == JobStatus.SUCCEEDED


def test_older_job_waiting_for_its_retry_does_not_hold_back_the_site(make_site):
    _site, environment = make_site()
    retrying = services.enqueue_job("test_fail", environment=environment, payload={"code": "node_unreachable"})
    assert run_job(str(retrying.pk)) == JobStatus.QUEUED
    younger = services.enqueue_job("test_record", environment=environment)

    assert run_job(str(younger.pk)) == JobStatus.SUCCEEDED
