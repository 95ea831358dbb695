"""Claiming a job moves it to running and its site and environment into the
handler's running status in one transaction; success moves them back."""

import pytest

from apps.core.choices import LifecycleStatus
from apps.environments.models import Environment
from apps.jobs import scopes, services
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.jobs.registry import job_handler, unregister
from apps.jobs.runner import run_job
from apps.sites.models import Site
from tests.jobs.support import in_other_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seen_while_running():
    """A handler that records, from another connection, what is committed while it runs."""
    seen = {}

    @job_handler("test_probe_status", running_status=LifecycleStatus.RESTORING)
    def probe(ctx):
        seen.update(
            in_other_connection(
                lambda: {
                    "job": Job.objects.get(pk=ctx.job.pk).status,
                    "site": Site.objects.get(pk=ctx.job.site_id).status,
                    "environment": Environment.objects.get(pk=ctx.job.environment_id).status,
                }
            )
        )

    yield seen
    unregister("test_probe_status")


def test_running_job_has_its_site_and_environment_in_the_running_status(make_site, seen_while_running):
    site, environment = make_site()
    job = services.enqueue_job("test_probe_status", environment=environment)

    assert run_job(str(job.pk)) == JobStatus.SUCCEEDED

    assert seen_while_running == {"job": "running", "site": "restoring", "environment": "restoring"}


def test_success_moves_site_and_environment_back_to_active(make_site):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)

    assert run_job(str(job.pk)) == JobStatus.SUCCEEDED

    job.refresh_from_db()
    site.refresh_from_db()
    environment.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt_count == 0  # retries, not runs
    assert job.started_at <= job.finished_at
    assert (job.locked_by, job.claim_token, job.heartbeat_at) == (None, None, None)
    assert (site.status, environment.status) == (LifecycleStatus.ACTIVE, LifecycleStatus.ACTIVE)
    # active -> deploying -> active: two versioned changes each.
    assert (site.state_version, environment.state_version) == (3, 3)


def test_claim_is_rolled_back_when_the_resource_change_fails(make_site, monkeypatch):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)

    def refuse(*args, **kwargs):
        raise RuntimeError("resource update failed")

    monkeypatch.setattr(scopes, "set_resource_status", refuse)
    with pytest.raises(RuntimeError):
        services.claim_job(job.pk)

    job.refresh_from_db()
    site.refresh_from_db()
    assert (job.status, job.attempt_count, job.claim_token, job.state_version) == (JobStatus.QUEUED, 0, None, 1)
    assert (site.status, site.state_version) == (LifecycleStatus.ACTIVE, 1)


def test_finish_is_rolled_back_when_the_resource_change_fails(make_site, monkeypatch):
    site, environment = make_site()
    job = services.enqueue_job("test_record", environment=environment)
    claim = services.claim_job(job.pk)

    def refuse(*args, **kwargs):
        raise RuntimeError("resource update failed")

    monkeypatch.setattr(scopes, "restore_resources", refuse)
    with pytest.raises(RuntimeError):
        services.finish_job(claim, services.Outcome("succeeded"))

    job.refresh_from_db()
    site.refresh_from_db()
    assert (job.status, job.claim_token) == (JobStatus.RUNNING, claim.token)
    assert site.status == LifecycleStatus.DEPLOYING


@pytest.fixture
def copying_handler():
    """A copy job like env_create: it marks the source environment named in its payload."""
    seen = {}

    @job_handler("test_copy", running_status=LifecycleStatus.CLONING, marks_source="source_environment_id")
    def copy(ctx):
        seen.update(in_other_connection(lambda: {
            "target": Environment.objects.get(pk=ctx.job.environment_id).status,
            "source": Environment.objects.get(pk=ctx.payload["source_environment_id"]).status,
        }))
        if ctx.payload.get("fail"):
            from apps.jobs.errors import JobError
            raise JobError("remote_step_failed", "the copy broke")

    yield seen
    unregister("test_copy")


@pytest.mark.parametrize("fail", [False, True])
def test_a_copy_marks_its_source_while_it_runs_and_always_returns_it(make_site, copying_handler, fail):
    from apps.environments.factories import EnvironmentFactory

    site, source = make_site()
    target = EnvironmentFactory(site=site, node=source.node, slug="staging", environment_type="staging")
    job = services.enqueue_job("test_copy", environment=target,
                               payload={"source_environment_id": str(source.pk), "fail": fail})

    assert run_job(str(job.pk)) == (JobStatus.FAILED if fail else JobStatus.SUCCEEDED)

    assert copying_handler == {"target": "cloning", "source": "cloning"}
    source.refresh_from_db()
    target.refresh_from_db()
    # The copy only read the source: it is active again either way.
    assert source.status == LifecycleStatus.ACTIVE
    assert target.status == (LifecycleStatus.FAILED if fail else LifecycleStatus.ACTIVE)
