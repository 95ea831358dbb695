"""The claim is a lease (apps/jobs/context.py): a run whose heartbeat could
not reach the database for its share of the lost-worker limit stops by
itself — at its next checkpoint, or through the lease guard that stops its
remote program — and a run the database no longer names does no node work."""

import time

import pytest
from django.test import override_settings

from apps.jobs import services
from apps.jobs.context import JobContext, LeaseGuard
from apps.jobs.errors import JobClaimLost
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def claimed(make_site):
    _site, environment = make_site()
    job = services.enqueue_job("test_noop", environment=environment)
    claim = services.claim_job(job.pk)
    assert claim is not None
    return claim


def test_a_run_whose_lease_ran_out_stops_at_its_next_checkpoint(claimed):
    context = JobContext(claimed)
    context.checkpoint()  # a fresh lease
    context._lease_until = time.monotonic() - 0.01  # as after a pause longer than the lease
    with pytest.raises(JobClaimLost):
        context.checkpoint()
    assert context.stop_event.is_set() and context.claim_lost.is_set()


def test_a_renewed_lease_keeps_the_run_going(claimed):
    context = JobContext(claimed)
    context._lease_until = time.monotonic() + 0.05
    context.renew_lease(time.monotonic())
    time.sleep(0.1)
    context.checkpoint()  # renewed for the full lease, still ours


@override_settings(JOB_LOST_AFTER=0.8)
def test_the_lease_guard_stops_a_run_whose_heartbeats_do_not_arrive(claimed):
    context = JobContext(claimed)  # lease 0.4 s; no heartbeat thread renews it
    guard = LeaseGuard(context)
    guard.start()
    try:
        assert context.stop_event.wait(5), "the guard stops the run (and so its remote program)"
    finally:
        guard.stop()
    assert context.claim_lost.is_set()


def test_a_run_the_database_no_longer_names_does_no_node_work(claimed):
    context = JobContext(claimed)
    context.confirm_claim()
    # The sweeper gave the job to another run meanwhile.
    Job.objects.filter(pk=claimed.job.pk).update(claim_token=None, status="queued")
    with pytest.raises(JobClaimLost):
        context.confirm_claim()
    assert context.stop_event.is_set()


def test_the_fence_names_the_jobs_scope_and_attempt(claimed):
    job = claimed.job
    fence = JobContext(claimed).fence()
    assert fence["job"] == job.pk.hex and fence["attempt"] == job.attempt_count
    assert fence["locks"] == [
        [f"node-{job.node_id.hex}", "shared"],
        [f"site-{job.site_id.hex}", "shared"],
        [f"environment-{job.environment_id.hex}", "exclusive"],
    ]
