"""end_run is the one way a run ends: for each ending (succeeded, failed,
cancelled, requeued now or later) it writes the job row, gives up the claim,
moves the site, environment and marked source back, closes the audit entry that
asked for the job (not when requeued) and wakes the jobs that were waiting."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.choices import LifecycleStatus
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.jobs.registry import get_handler, job_handler, unregister
from tests.jobs.support import clear_dispatched, dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)

JOB_TYPE = "test_end_run_copy"


@pytest.fixture
def running(make_site):
    """A claimed job of a handler that marks a source environment, an open audit
    entry for it, and a job of the same node waiting behind it."""

    @job_handler(JOB_TYPE, running_status=LifecycleStatus.CLONING, marks_source="source_environment_id")
    def copy(ctx):
        pass

    site, environment = make_site()
    source = EnvironmentFactory(
        site=site, node=environment.node, slug="staging", environment_type=EnvironmentType.STAGING
    )
    job = services.enqueue_job(JOB_TYPE, environment=environment, payload={"source_environment_id": str(source.pk)})
    # An error of an earlier attempt: a success clears it, a cancel keeps it.
    Job.objects.filter(pk=job.pk).update(error_code="remote_timeout", error_message="earlier attempt")
    claim = services.claim_job(job.pk)
    assert claim is not None
    entry = AuditEntry.objects.create(action="test", result=AuditResult.ACCEPTED, job=job)
    waiting = services.enqueue_job("test_record", node=environment.node)
    clear_dispatched()

    yield {"job": job, "site": site, "environment": environment, "source": source, "entry": entry, "waiting": waiting}
    unregister(JOB_TYPE)


def end(job, status, **options):
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        return services.end_run(locked, status, spec=options.pop("spec", get_handler(JOB_TYPE)), **options)


def statuses(running):
    for name in ("site", "environment", "source"):
        running[name].refresh_from_db()
    return running["site"].status, running["environment"].status, running["source"].status


def assert_claim_released(job):
    assert (job.locked_at, job.locked_by, job.claim_token, job.heartbeat_at) == (None, None, None, None)


def test_succeeded(running):
    end(running["job"], JobStatus.SUCCEEDED, result={"copied": 3})

    job = Job.objects.get(pk=running["job"].pk)
    assert job.status == JobStatus.SUCCEEDED
    assert job.finished_at is not None and job.finished_at >= job.started_at
    assert (job.error_code, job.error_message, job.result) == (None, None, {"copied": 3})
    assert (job.attempt_count, job.cancel_requested) == (0, False)
    assert_claim_released(job)
    assert statuses(running) == (LifecycleStatus.ACTIVE,) * 3
    running["entry"].refresh_from_db()
    assert running["entry"].result == AuditResult.COMPLETED
    assert running["entry"].completed_at is not None
    assert dispatched_job_ids() == [str(running["waiting"].pk)]


def test_failed_marks_the_moved_resources_failed_and_frees_the_source(running):
    end(running["job"], JobStatus.FAILED, error_code="node_unreachable", error_message="no route")

    job = Job.objects.get(pk=running["job"].pk)
    assert (job.status, job.error_code, job.error_message) == (JobStatus.FAILED, "node_unreachable", "no route")
    assert job.finished_at is not None
    assert_claim_released(job)
    assert statuses(running) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED, LifecycleStatus.ACTIVE)
    assert running["site"].status_reason == f"{JOB_TYPE} failed: no route"
    assert running["environment"].status_reason == f"{JOB_TYPE} failed: no route"
    running["entry"].refresh_from_db()
    assert running["entry"].result == AuditResult.FAILED
    assert dispatched_job_ids() == [str(running["waiting"].pk)]


def test_failed_with_resources_intact_puts_them_back_to_active(running):
    end(running["job"], JobStatus.FAILED, error_code="node_unreachable", error_message="x", resource_intact=True)

    assert Job.objects.get(pk=running["job"].pk).status == JobStatus.FAILED
    assert statuses(running) == (LifecycleStatus.ACTIVE,) * 3
    assert running["site"].status_reason == ""


def test_cancelled_keeps_the_last_error(running):
    end(running["job"], JobStatus.CANCELLED)

    job = Job.objects.get(pk=running["job"].pk)
    assert (job.status, job.cancel_requested) == (JobStatus.CANCELLED, True)
    assert (job.error_code, job.error_message) == ("remote_timeout", "earlier attempt")
    assert job.finished_at is not None
    assert_claim_released(job)
    assert statuses(running) == (LifecycleStatus.ACTIVE,) * 3
    running["entry"].refresh_from_db()
    assert running["entry"].result == AuditResult.CANCELLED
    assert dispatched_job_ids() == [str(running["waiting"].pk)]


def test_requeued_for_later_is_one_more_attempt_and_leaves_the_audit_open(running):
    later = timezone.now() + timedelta(minutes=5)
    end(running["job"], JobStatus.QUEUED, error_code="remote_timeout", error_message="again", run_after=later)

    job = Job.objects.get(pk=running["job"].pk)
    assert (job.status, job.attempt_count, job.run_after) == (JobStatus.QUEUED, 1, later)
    assert (job.error_code, job.error_message, job.finished_at) == ("remote_timeout", "again", None)
    assert_claim_released(job)
    assert statuses(running) == (LifecycleStatus.ACTIVE,) * 3
    running["entry"].refresh_from_db()
    assert (running["entry"].result, running["entry"].completed_at) == (AuditResult.ACCEPTED, None)
    # Not due yet: only the waiting job is woken, not the requeued one.
    assert dispatched_job_ids() == [str(running["waiting"].pk)]


def test_requeued_to_run_at_once_is_woken_itself(running):
    end(running["job"], JobStatus.QUEUED, error_code="worker_lost", error_message="gone", run_after=None)

    job = Job.objects.get(pk=running["job"].pk)
    assert (job.status, job.attempt_count, job.run_after) == (JobStatus.QUEUED, 1, None)
    assert statuses(running) == (LifecycleStatus.ACTIVE,) * 3
    running["entry"].refresh_from_db()
    assert running["entry"].result == AuditResult.ACCEPTED
    # The node's one slot goes to the requeued job, older than the node-wide one waiting behind it.
    assert dispatched_job_ids() == [str(job.pk)]


def test_a_run_that_never_started_moves_no_resource(running):
    end(running["job"], JobStatus.FAILED, spec=None, error_code="resource_failed", error_message="x")

    assert Job.objects.get(pk=running["job"].pk).status == JobStatus.FAILED
    # Still in the status the claim put them in: spec=None touches none.
    assert statuses(running) == (LifecycleStatus.CLONING,) * 3
    running["entry"].refresh_from_db()
    assert running["entry"].result == AuditResult.FAILED


def test_an_explicit_failed_reason_applies_to_a_cancel(running):
    end(running["job"], JobStatus.CANCELLED, failed_reason="cancelled before it ran")

    assert statuses(running) == (LifecycleStatus.FAILED, LifecycleStatus.FAILED, LifecycleStatus.ACTIVE)
    assert running["site"].status_reason == "cancelled before it ran"


def test_nothing_is_written_or_woken_when_the_transaction_rolls_back(running):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=running["job"].pk)
            services.end_run(locked, JobStatus.SUCCEEDED, spec=get_handler(JOB_TYPE))
            raise RuntimeError("later step failed")

    assert Job.objects.get(pk=running["job"].pk).status == JobStatus.RUNNING
    assert statuses(running) == (LifecycleStatus.CLONING,) * 3
    running["entry"].refresh_from_db()
    assert running["entry"].result == AuditResult.ACCEPTED
    assert dispatched_job_ids() == []
