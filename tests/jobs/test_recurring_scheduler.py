"""The scheduler enqueues a recurring job once per scope and never while one
of the same type and scope is queued or running; ensure_schedules keeps one
django-q2 Schedule row per recurring job (and the sweep), idempotently."""

import threading

import pytest
from django.db import IntegrityError, connections
from django_q.models import Schedule

from apps.jobs import scheduler, services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.jobs.runner import run_job
from apps.nodes.factories import NodeFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def nightly_noop():
    """A recurring test_noop job, one per node."""
    from apps.nodes.models import Node

    @scheduler.recurring_job("test_noop", every_minutes=360)
    def per_node():
        for node in Node.objects.order_by("name"):
            yield scheduler.JobScope(dedup_key=f"node:{node.pk}", node=node)

    yield "test_noop"
    scheduler.unregister_recurring("test_noop")


def test_one_job_per_scope_and_no_duplicate_while_queued_or_running(nightly_noop):
    first_node, second_node = NodeFactory(), NodeFactory()

    created = scheduler.enqueue_recurring(nightly_noop)
    assert sorted(job.node_id for job in created) == sorted([first_node.pk, second_node.pk])

    assert scheduler.enqueue_recurring(nightly_noop) == [], "both still queued"
    running = next(job for job in created if job.node_id == first_node.pk)
    claim = services.claim_job(running.pk)
    assert scheduler.enqueue_recurring(nightly_noop) == [], "one running, one queued"

    services.finish_job(claim, services.Outcome("succeeded"))
    again = scheduler.enqueue_recurring(nightly_noop)
    assert [job.node_id for job in again] == [first_node.pk]
    assert Job.objects.filter(job_type=nightly_noop, status__in=["queued", "running"]).count() == 2


def test_database_refuses_a_second_active_job_for_one_scope(nightly_noop):
    node = NodeFactory()
    services.enqueue_job(nightly_noop, node=node, dedup_key=f"node:{node.pk}")

    with pytest.raises(IntegrityError):
        services.enqueue_job(nightly_noop, node=node, dedup_key=f"node:{node.pk}")


def test_ended_recurring_job_makes_room_for_the_next(nightly_noop):
    node = NodeFactory()
    (job,) = scheduler.enqueue_recurring(nightly_noop)
    assert run_job(str(job.pk)) == JobStatus.SUCCEEDED

    (following,) = scheduler.enqueue_recurring(nightly_noop)

    assert following.pk != job.pk and following.node_id == node.pk


def test_ensure_schedules_creates_schedule_rows_idempotently(nightly_noop):
    retired = f"{scheduler.SCHEDULE_PREFIX}retired"
    Schedule.objects.create(name=retired, func="apps.jobs.scheduler.sweep")

    scheduler.ensure_schedules()
    first = {s.name: (s.pk, s.func, s.args, s.schedule_type, s.minutes, s.repeats) for s in Schedule.objects.all()}
    scheduler.ensure_schedules()
    second = {s.name: (s.pk, s.func, s.args, s.schedule_type, s.minutes, s.repeats) for s in Schedule.objects.all()}

    assert first == second
    assert Schedule.objects.count() == len(first), "one row per name"
    assert retired not in first
    assert first[scheduler.SWEEP_SCHEDULE][1:] == ("apps.jobs.scheduler.sweep", "", Schedule.MINUTES, 1, -1)
    assert first[scheduler.NODE_HEALTH_SCHEDULE][1:] == ("apps.nodes.health.refresh_stale", "", Schedule.MINUTES,
                                                         scheduler.NODE_HEALTH_EVERY_MINUTES, -1)
    assert first[f"{scheduler.SCHEDULE_PREFIX}test_noop"][1:] == (
        "apps.jobs.scheduler.enqueue_recurring",
        "'test_noop'",
        Schedule.MINUTES,
        360,
        -1,
    )


def test_workers_starting_together_create_each_schedule_once(nightly_noop):
    """Every runworker calls ensure_schedules when it starts; several start at once."""
    starting = threading.Barrier(6)
    errors = []

    def start_worker():
        try:
            starting.wait()
            scheduler.ensure_schedules()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start_worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    names = list(Schedule.objects.values_list("name", flat=True))
    assert sorted(names) == sorted(set(names)), "no schedule twice"
    assert {scheduler.SWEEP_SCHEDULE, f"{scheduler.SCHEDULE_PREFIX}test_noop"} <= set(names)
