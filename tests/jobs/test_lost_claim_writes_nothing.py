"""A worker whose claim was taken away (the sweeper requeued the job, maybe
another worker runs it now) records nothing when it finishes."""

import uuid

import pytest
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.choices import LifecycleStatus
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job, JobLogLine
from apps.jobs.runner import run_job
from tests.jobs.support import InThread, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _recovered_behind_its_back(job):
    stale = timezone.now() - timedelta(seconds=settings.JOB_LOST_AFTER + 5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert services.recover_lost_jobs()


def test_finish_after_the_job_was_requeued_writes_nothing(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    claim = services.claim_job(job.pk)
    _recovered_behind_its_back(job)
    job.refresh_from_db()
    site.refresh_from_db()
    before = (job.status, job.state_version, site.status, site.state_version)

    assert services.finish_job(claim, services.Outcome("succeeded")) is None

    job.refresh_from_db()
    site.refresh_from_db()
    assert (job.status, job.state_version, site.status, site.state_version) == before


def test_finish_after_another_worker_took_the_job_writes_nothing(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    first = services.claim_job(job.pk)
    _recovered_behind_its_back(job)
    second = services.claim_job(job.pk)

    assert services.finish_job(first, services.Outcome("failed", "internal_error", "late")) is None

    job.refresh_from_db()
    site.refresh_from_db()
    assert (job.status, job.claim_token, job.error_code) == (JobStatus.RUNNING, second.token, "worker_lost")
    assert site.status == LifecycleStatus.DEPLOYING
    assert services.finish_job(second, services.Outcome("succeeded")) is not None


def test_running_handler_stops_quietly_when_its_claim_is_taken(make_site, settings):
    settings.JOB_HEARTBEAT_INTERVAL = 0.2
    _site, environment = make_site()
    job = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 60})
    run = InThread(run_job, str(job.pk))
    wait_until(lambda: JobLogLine.objects.filter(job=job, message__startswith="sleeping").exists(), 10, lambda: "never started")
    new_owner = uuid.uuid4()
    Job.objects.filter(pk=job.pk).update(claim_token=new_owner, locked_by="elsewhere:1")

    assert run.result(timeout=15) == "claim-lost"

    job.refresh_from_db()
    assert (job.status, job.claim_token, job.locked_by) == (JobStatus.RUNNING, new_owner, "elsewhere:1")
    assert job.finished_at is None
