"""Real worker processes on a node with three slots: never more than three
jobs run on it, never two on one site, a node-wide job runs alone, and the
slots are used (jobs of different sites do run side by side)."""

import pytest

from apps.jobs import services
from apps.jobs.choices import TERMINAL, JobStatus
from apps.jobs.models import Job
from apps.nodes.factories import NodeFactory
from apps.nodes.models import Node
from tests.jobs.support import find_overlaps, recorded_runs, status_counts, wait_until

pytestmark = pytest.mark.cluster

SLOTS, SITES, JOBS_PER_SITE = 3, 6, 8


def most_at_once(intervals) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = highest = 0
    for _, change in events:
        current += change
        highest = max(highest, current)
    return highest


def test_a_node_with_three_slots_runs_three_site_jobs_at_once_and_node_wide_ones_alone(make_site, start_workers):
    node = NodeFactory()
    Node.objects.filter(pk=node.pk).update(max_site_jobs=SLOTS)
    environments = [make_site(node=node)[1] for _ in range(SITES)]
    jobs = []
    for round_ in range(JOBS_PER_SITE):
        for environment in environments:
            jobs.append(services.enqueue_job("test_record", environment=environment, payload={"sleep": 0.2}))
        if round_ % 4 == 1:
            jobs.append(services.enqueue_job("test_record", node=node, payload={"sleep": 0.2}))
    workers = start_workers(2, PRESSLUFT_WORKERS=3, PRESSLUFT_JOB_SWEEP_INTERVAL=2)

    wait_until(
        lambda: Job.objects.filter(pk__in=[job.pk for job in jobs], status__in=TERMINAL).count() == len(jobs),
        180,
        lambda: f"jobs by status: {status_counts(jobs)}\n{workers.tail()}",
        interval=0.5,
    )
    assert status_counts(jobs) == {JobStatus.SUCCEEDED: len(jobs)}, workers.tail()
    runs = recorded_runs(jobs)
    site_jobs = [job for job in jobs if job.site_id]
    node_wide = [job for job in jobs if not job.site_id]

    # One per site: the site-only view of the overlap check.
    assert find_overlaps({job.pk: (job.site_id, None) for job in site_jobs}, runs) == []
    on_node = [interval for job in site_jobs for interval in runs[job.pk]]
    assert 2 <= most_at_once(on_node) <= SLOTS, f"at most {SLOTS} at once, and the slots were used"
    for job in node_wide:
        (start, end), = runs[job.pk]
        beside = [(s, e) for s, e in on_node if s < end and start < e]
        assert beside == [], f"node-wide job {job.pk} ran beside site jobs"
    assert workers.alive(), workers.tail()
