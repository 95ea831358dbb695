"""A job whose site or node has a running job is not claimed; when the
blocking job finishes, finish_job wakes it and it runs."""

import pytest

from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.jobs import services
from apps.nodes.models import Node
from apps.jobs.choices import JobStatus
from apps.jobs.runner import run_job
from apps.nodes.factories import NodeFactory
from tests.jobs.support import clear_dispatched, dispatched_job_ids

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_job(kind, site, environment):
    if kind == "same site on another node":
        staging = EnvironmentFactory(
            site=site, node=NodeFactory(), slug="staging", environment_type=EnvironmentType.STAGING
        )
        return services.enqueue_job("test_record", environment=staging)
    if kind == "another site on the same node":
        from apps.sites.factories import SiteFactory

        other = EnvironmentFactory(site=SiteFactory(), node=environment.node, slug="production")
        return services.enqueue_job("test_record", environment=other)
    if kind == "node-only job on the same node":
        return services.enqueue_job("test_record", node=environment.node)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["same site on another node", "another site on the same node", "node-only job on the same node"]
)
def test_blocked_job_waits_and_is_woken_when_the_blocker_finishes(make_site, kind):
    site, environment = make_site()
    blocker = services.enqueue_job("test_record", environment=environment)
    blocker_claim = services.claim_job(blocker.pk)
    waiting = _waiting_job(kind, site, environment)

    assert run_job(str(waiting.pk)) == "not-claimed"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempt_count) == (JobStatus.QUEUED, 0)

    clear_dispatched()
    services.finish_job(blocker_claim, services.Outcome("succeeded"))
    assert dispatched_job_ids() == [str(waiting.pk)]

    assert run_job(str(waiting.pk)) == JobStatus.SUCCEEDED


def test_failed_blocker_wakes_the_waiting_job_too(make_site):
    _site, environment = make_site()
    blocker = services.enqueue_job("test_fail", environment=environment, payload={"code": "internal_error"})
    waiting = services.enqueue_job("test_record", node=environment.node)
    claim = services.claim_job(blocker.pk)
    assert run_job(str(waiting.pk)) == "not-claimed"

    clear_dispatched()
    services.finish_job(claim, services.Outcome("failed", "internal_error", "broken"))

    assert dispatched_job_ids() == [str(waiting.pk)]
    assert run_job(str(waiting.pk)) == JobStatus.SUCCEEDED


def test_wake_reaches_other_sites_behind_a_long_line_on_one_site(make_site):
    """Twenty jobs queued on one site must not hide a job of another site on the freed node."""
    site, environment = make_site()
    Node.objects.filter(pk=environment.node_id).update(max_site_jobs=2)
    blocker = services.enqueue_job("test_record", environment=environment)
    claim = services.claim_job(blocker.pk)
    line = [services.enqueue_job("test_record", environment=environment) for _ in range(20)]
    _other_site, neighbour = make_site(node=environment.node)
    behind = services.enqueue_job("test_record", environment=neighbour)

    clear_dispatched()
    services.finish_job(claim, services.Outcome("succeeded"))

    assert dispatched_job_ids() == [str(line[0].pk), str(behind.pk)]
