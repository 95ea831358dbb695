"""enqueue_job refuses a job type without a handler, and tells a worker
about a job only once the job's transaction has committed."""

import pytest
from django.db import transaction

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.jobs.registry import job_handler, unregister
from apps.jobs.runner import run_job
from tests.jobs.support import dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_type_without_a_handler_is_refused(make_site):
    _site, environment = make_site()

    with pytest.raises(ValueError, match="no handler"):
        services.enqueue_job("no_such_job_type", environment=environment)

    assert not Job.objects.exists()


def test_job_is_dispatched_only_after_commit(make_site):
    _site, environment = make_site()
    with transaction.atomic():
        job = services.enqueue_job("test_record", environment=environment)
        assert dispatched_job_ids() == []
    assert dispatched_job_ids() == [str(job.pk)]


def test_rolled_back_job_is_never_dispatched(make_site):
    _site, environment = make_site()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            services.enqueue_job("test_record", environment=environment)
            raise RuntimeError("request failed")

    assert dispatched_job_ids() == []
    assert not Job.objects.exists()


def test_job_whose_handler_disappeared_fails_as_handler_missing(make_site):
    job_handler("test_vanishing")(lambda ctx: None)
    _site, environment = make_site()
    job = services.enqueue_job("test_vanishing", environment=environment)
    unregister("test_vanishing")

    assert run_job(str(job.pk)) == "not-claimed"

    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "handler_missing")
