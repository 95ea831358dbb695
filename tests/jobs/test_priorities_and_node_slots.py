"""Who starts next (apps/jobs/admission.py): operator work before scheduled
work on a node, first in first out within a priority on a site, and a node
running up to its max_site_jobs site jobs while node-wide jobs run alone."""

import pytest

from apps.jobs import services
from apps.jobs.choices import JobPriority, JobStatus
from apps.nodes.factories import NodeFactory
from apps.nodes.models import Node
from tests.jobs.support import clear_dispatched, dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)

SCHEDULED = JobPriority.SCHEDULED


def test_an_operators_job_behind_fifty_scheduled_ones_takes_the_next_free_slot(make_site):
    node = NodeFactory()
    _site, blocker_env = make_site(node=node)
    blocker = services.claim_job(services.enqueue_job("test_record", environment=blocker_env).pk)
    scheduled = [services.enqueue_job("test_record", environment=make_site(node=node)[1], priority=SCHEDULED)
                 for _ in range(50)]
    operator = services.enqueue_job("test_record", environment=make_site(node=node)[1])
    # While the operator's job waits for the node, no scheduled job takes a slot that frees.
    assert services.claim_job(scheduled[0].pk) is None

    clear_dispatched()
    services.finish_job(blocker, services.Outcome("succeeded"))

    assert dispatched_job_ids() == [str(operator.pk)]
    assert services.claim_job(scheduled[0].pk) is None
    assert services.claim_job(operator.pk) is not None


def test_on_one_site_operator_work_goes_first_and_each_priority_keeps_its_order(make_site):
    _site, environment = make_site()
    backup = services.enqueue_job("test_record", environment=environment, priority=SCHEDULED)
    first = services.enqueue_job("test_record", environment=environment)
    second = services.enqueue_job("test_record", environment=environment)

    assert services.claim_job(second.pk) is None, "first in, first out among operator jobs"
    assert services.claim_job(backup.pk) is None, "the scheduled job waits for the operator's"
    claim = services.claim_job(first.pk)
    services.finish_job(claim, services.Outcome("succeeded"))
    assert services.claim_job(backup.pk) is None
    services.finish_job(services.claim_job(second.pk), services.Outcome("succeeded"))
    assert services.claim_job(backup.pk) is not None


def test_a_node_runs_up_to_its_slots_one_job_per_site_and_node_wide_jobs_alone(make_site):
    node = NodeFactory()
    Node.objects.filter(pk=node.pk).update(max_site_jobs=3)
    environments = [make_site(node=node)[1] for _ in range(4)]
    jobs = [services.enqueue_job("test_record", environment=environment) for environment in environments]
    same_site = services.enqueue_job("test_record", environment=environments[0])
    node_wide = services.enqueue_job("test_record", node=node)

    claims = [services.claim_job(job.pk) for job in jobs[:3]]
    assert all(claims)
    assert services.claim_job(jobs[3].pk) is None, "three slots, all taken"
    assert services.claim_job(same_site.pk) is None, "one job per site"
    assert services.claim_job(node_wide.pk) is None, "a node-wide job waits for the node to be empty"

    clear_dispatched()
    services.finish_job(claims[0], services.Outcome("succeeded"))
    # The freed slot goes to the next job in line: the fourth site's (older than the node-wide one).
    assert str(jobs[3].pk) in dispatched_job_ids()
    claims.append(services.claim_job(jobs[3].pk))
    for claim in claims[1:]:
        services.finish_job(claim, services.Outcome("succeeded"))
    # same_site ranks before node_wide: it runs, then the node-wide job, alone.
    running_site_job = services.claim_job(same_site.pk)
    assert running_site_job is not None
    assert services.claim_job(node_wide.pk) is None
    services.finish_job(running_site_job, services.Outcome("succeeded"))
    provision = services.claim_job(node_wide.pk)
    assert provision is not None
    late = services.enqueue_job("test_record", environment=environments[1])
    assert services.claim_job(late.pk) is None, "nothing else runs beside a node-wide job"
    assert provision.job.status == JobStatus.RUNNING


def test_more_slots_start_waiting_jobs_at_once(make_site, api_client):
    node = NodeFactory()
    environments = [make_site(node=node)[1] for _ in range(3)]
    running = services.claim_job(services.enqueue_job("test_record", environment=environments[0]).pk)
    waiting = [services.enqueue_job("test_record", environment=environment) for environment in environments[1:]]
    clear_dispatched()

    response = api_client.patch(f"/api/nodes/{node.pk}", {"max_site_jobs": 3}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["max_site_jobs"] == 3
    assert sorted(dispatched_job_ids()) == sorted(str(job.pk) for job in waiting)
    assert all(services.claim_job(job.pk) for job in waiting)
    assert running is not None


@pytest.mark.parametrize("body", [{"max_site_jobs": 0}, {"max_site_jobs": 17}, {"max_site_jobs": "2x"},
                                  {"max_site_jobs": 2, "name": "x"}, {"max_site_jobs": None}])
def test_bad_slot_counts_are_refused_and_change_nothing(api_client, body):
    node = NodeFactory()
    response = api_client.patch(f"/api/nodes/{node.pk}", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) >= {"code", "message"}
    node.refresh_from_db()
    assert node.max_site_jobs == 1


def test_an_empty_patch_changes_nothing(api_client):
    node = NodeFactory()
    response = api_client.patch(f"/api/nodes/{node.pk}", {}, format="json")
    assert (response.status_code, response.json()["max_site_jobs"]) == (200, 1)
