"""Cancelling a queued job ends it at once; a later delivery does nothing."""

import pytest

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.errors import ApiError
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.runner import run_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancel_of_a_queued_job_is_immediate(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    entry = AuditEntry.objects.create(action="test", result=AuditResult.ACCEPTED, job=job)

    services.cancel_job(job.pk)

    job.refresh_from_db()
    entry.refresh_from_db()
    assert (job.status, job.cancel_requested) == (JobStatus.CANCELLED, True)
    assert job.finished_at is not None
    assert entry.result == AuditResult.CANCELLED
    assert run_job(str(job.pk)) == "not-claimed"
    job.refresh_from_db()
    assert (job.status, job.attempt_count) == (JobStatus.CANCELLED, 0)


def test_an_ended_job_cannot_be_cancelled(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    run_job(str(job.pk))

    with pytest.raises(ApiError) as refused:
        services.cancel_job(job.pk)

    assert refused.value.code == "job_not_cancellable"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_cancelling_a_queued_creation_job_leaves_nothing_in_progress(make_site):
    from apps.core.choices import LifecycleStatus
    from apps.environments.models import Environment
    from apps.sites.models import Site

    site, environment = make_site()
    # As create_site does: new resources start in the creating job's running status.
    Site.objects.filter(pk=site.pk).update(status=LifecycleStatus.DEPLOYING)
    Environment.objects.filter(pk=environment.pk).update(status=LifecycleStatus.DEPLOYING)
    job = services.enqueue_job("test_record", environment=environment)

    services.cancel_job(job.pk)

    site.refresh_from_db()
    environment.refresh_from_db()
    assert (site.status, environment.status) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED)
    assert "cancelled before it ran" in site.status_reason
