"""Deleting a staging environment, by an operator or because it expired,
removes everything it had on the node and leaves production alone."""

import grp
import http.client
import pwd
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.environments import naming
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job
from apps.jobs.scheduler import enqueue_recurring
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def clone(api_client, site, slug):
    response = api_client.post(
        f"/api/sites/{site.id}/environments",
        {"name": slug.title(), "slug": slug, "type": "staging", "promotion_preset": "content-protect"},
        format="json",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    return Environment.objects.get(site=site, slug=slug)


def assert_gone_from_node(environment):
    assert not Path(naming.root(environment)).exists()
    assert not Path(naming.vhost_path(environment)).exists()
    assert not Path(naming.pool_path(environment)).exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(naming.system_name(environment))
    with pytest.raises(KeyError):  # its group too, though www-data was a member
        grp.getgrnam(naming.system_name(environment))
    with pytest.raises(http.client.RemoteDisconnected):
        http_get(environment.preview_url)


def test_deleting_a_staging_environment_leaves_production_serving(api_client, local_node):
    site, production = create_site(api_client, "Epsilon", "epsilon")
    staging = clone(api_client, site, "staging")
    assert api_client.delete(f"/api/environments/{production.id}").status_code == 409
    response = api_client.delete(f"/api/environments/{staging.id}")
    assert response.status_code == 202
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    assert_gone_from_node(staging)
    assert not Environment.objects.filter(pk=staging.pk).exists()
    assert api_client.get(f"/api/environments/{staging.id}").status_code == 404
    assert http_get(production.preview_url)[0] == 200
    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_an_expired_clone_is_deleted_by_the_scheduler_once(api_client, local_node):
    site, production = create_site(api_client, "Zeta", "zeta")
    staging = clone(api_client, site, "preview")
    Environment.objects.filter(pk=staging.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    jobs = enqueue_recurring("env_delete")
    assert [job.environment_id for job in jobs] == [staging.pk]
    assert enqueue_recurring("env_delete") == []  # one delete per environment, never two
    assert runner.run_job(str(jobs[0].pk)) == "succeeded", job_log(jobs[0].pk)
    assert_gone_from_node(staging)
    assert Environment.objects.filter(site=site).count() == 1
    assert enqueue_recurring("env_delete") == []
    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_expiry_must_be_in_the_future(api_client, local_node):
    site, _ = create_site(api_client, "Eta", "eta")
    response = api_client.post(
        f"/api/sites/{site.id}/environments",
        {"name": "Old", "slug": "old", "type": "clone", "promotion_preset": "content-protect",
         "expires_at": (timezone.now() - timedelta(hours=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["details"]["fields"]
    assert not Job.objects.filter(job_type="env_create").exists()
    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
