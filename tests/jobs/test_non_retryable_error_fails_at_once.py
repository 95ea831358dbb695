"""A non-retryable JobError fails the job on its first attempt, with the
code and message the handler gave; the site and environment fail with it
unless the handler says it left them intact."""

import pytest

from apps.core.choices import LifecycleStatus
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.errors import JOB_ERROR_CODES, JobError
from apps.jobs.registry import job_handler, unregister
from apps.jobs.runner import run_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_non_retryable_error_fails_job_site_and_environment(make_site):
    site, environment = make_site()
    assert not JOB_ERROR_CODES["internal_error"].retryable
    job = services.enqueue_job(
        "test_fail", environment=environment, payload={"code": "internal_error", "message": "disk is full"}
    )

    assert run_job(str(job.pk)) == JobStatus.FAILED

    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert (job.status, job.attempt_count, job.run_after) == (JobStatus.FAILED, 0, None)
    assert (job.error_code, job.error_message) == ("internal_error", "disk is full")
    assert (site.status, environment.status) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED)
    assert "disk is full" in site.status_reason


@pytest.fixture
def rolled_back_handler():
    @job_handler("test_rolled_back", running_status=LifecycleStatus.DEPLOYING)
    def rolled_back(ctx):
        raise JobError("node_unreachable", "gave up and restored", retryable=False, resource_intact=True)

    yield "test_rolled_back"
    unregister("test_rolled_back")


def test_failure_that_left_the_resource_intact_keeps_the_site_active(make_site, rolled_back_handler):
    site, environment = make_site()
    job = services.enqueue_job(rolled_back_handler, environment=environment)

    assert run_job(str(job.pk)) == JobStatus.FAILED

    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert (job.attempt_count, job.error_code) == (0, "node_unreachable")
    assert (site.status, environment.status) == (LifecycleStatus.ACTIVE, LifecycleStatus.ACTIVE)
