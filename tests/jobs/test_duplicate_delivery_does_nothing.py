"""django-q2 may deliver one message twice (even to two clusters at once): the
claim makes every delivery after the first a no-op."""

import pytest

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import JobLogLine
from apps.jobs.runner import run_job
from tests.jobs.support import InThread

pytestmark = pytest.mark.django_db(transaction=True)


def test_delivery_of_a_finished_job_does_nothing(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    assert run_job(str(job.pk)) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    version, lines = job.state_version, JobLogLine.objects.filter(job=job).count()

    assert run_job(str(job.pk)) == "not-claimed"

    job.refresh_from_db()
    assert (job.status, job.attempt_count, job.state_version) == (JobStatus.SUCCEEDED, 0, version)
    assert JobLogLine.objects.filter(job=job).count() == lines


def test_delivery_of_a_running_job_does_nothing(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    claim = services.claim_job(job.pk)

    assert run_job(str(job.pk)) == "not-claimed"

    job.refresh_from_db()
    assert (job.status, job.attempt_count, job.claim_token) == (JobStatus.RUNNING, 0, claim.token)
    assert not JobLogLine.objects.filter(job=job).exists()


def test_simultaneous_deliveries_run_the_handler_once(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment, payload={"sleep": 0.3})

    deliveries = [InThread(run_job, str(job.pk)) for _ in range(4)]
    results = sorted(delivery.result(timeout=30) for delivery in deliveries)

    assert results == ["not-claimed"] * 3 + [JobStatus.SUCCEEDED]
    job.refresh_from_db()
    assert job.attempt_count == 0
    assert JobLogLine.objects.filter(job=job, message__startswith="start ").count() == 1
