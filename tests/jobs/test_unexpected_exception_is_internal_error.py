"""A bug in a handler fails the job as internal_error; the exception's text
(which may hold a secret) appears in no message an operator or client sees."""

import pytest

from apps.core.choices import LifecycleStatus
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import JobLogLine
from apps.jobs.runner import run_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_crash_becomes_internal_error_without_the_exception_text(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_crash", environment=environment)

    assert run_job(str(job.pk)) == JobStatus.FAILED

    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert (job.status, job.attempt_count, job.error_code) == (JobStatus.FAILED, 0, "internal_error")
    assert "RuntimeError" in job.error_message
    visible = [job.error_message, site.status_reason, environment.status_reason, str(job.result)]
    visible += list(JobLogLine.objects.filter(job=job).values_list("message", flat=True))
    assert not [text for text in visible if "hunter2" in text]
    assert (site.status, environment.status) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED)
