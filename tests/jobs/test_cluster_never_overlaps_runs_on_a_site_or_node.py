"""Real worker processes on PostgreSQL: a few hundred jobs over a handful of
sites and nodes all succeed, and no two runs on one site or one node overlap."""

import random

import pytest

from apps.jobs import services
from apps.jobs.choices import TERMINAL, JobStatus
from apps.jobs.models import Job
from apps.nodes.factories import NodeFactory
from tests.jobs.support import overlapping_runs, recorded_runs, status_counts, wait_until

pytestmark = pytest.mark.cluster

SITES, NODES, JOBS, NODE_ONLY_EVERY = 6, 3, 300, 6


def test_three_workers_never_overlap_runs_on_one_site_or_node(make_site, start_workers):
    workers = start_workers(3, PRESSLUFT_WORKERS=2, PRESSLUFT_JOB_SWEEP_INTERVAL=2)
    nodes = [NodeFactory() for _ in range(NODES)]
    environments = [make_site(node=nodes[index % NODES])[1] for index in range(SITES)]
    chooser = random.Random(20240601)

    jobs = []
    for index in range(JOBS):
        payload = {"sleep": chooser.choice([0, 0.005, 0.02])}
        if index % NODE_ONLY_EVERY == 0:
            jobs.append(services.enqueue_job("test_record", node=chooser.choice(nodes), payload=payload))
        else:
            jobs.append(services.enqueue_job("test_record", environment=chooser.choice(environments), payload=payload))

    def all_ended():
        return Job.objects.filter(pk__in=[job.pk for job in jobs], status__in=TERMINAL).count() == len(jobs)

    wait_until(
        all_ended,
        180,
        lambda: f"jobs by status: {status_counts(jobs)}; workers alive: {workers.alive()}\n{workers.tail()}",
        interval=0.5,
    )

    assert status_counts(jobs) == {JobStatus.SUCCEEDED: len(jobs)}, workers.tail()
    runs = recorded_runs(jobs)
    assert not [job.pk for job in jobs if not runs.get(job.pk)], "every job recorded its run"
    assert overlapping_runs(jobs) == []
    assert workers.alive(), workers.tail()
    assert "sweep failed" not in workers.logs()
