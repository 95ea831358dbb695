"""End to end on the real local node: an Operator creates a site; a Developer's
API token makes a staging copy of it, deploys to the copy and logs in to its
WordPress, and is refused on production before anything reaches the node."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.factories import UserFactory
from apps.accounts.roles import DEVELOPERS
from apps.accounts.services import create_api_token
from apps.audit.models import AuditEntry
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job
from tests.api.test_deploy_sources import THEME
from tests.environments.archives import make_tar
from tests.sites.test_deploy_sources_e2e import deploy, magic_login_works, upload
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user, 'ci').plaintext}")
    return client


def test_a_developer_works_on_staging_and_is_kept_off_production(api_client, local_node, tmp_path, settings):
    settings.DEPLOY_ARCHIVE_DIR = tmp_path / "deploy-archives"
    site, production = create_site(api_client, "Gamma Garden", "gamma")  # api_client: an Operator
    developer = token_client(UserFactory(email="dev@example.test", groups=[DEVELOPERS]))
    try:
        _developer_on_production(developer, site, production, tmp_path)
        _developer_on_staging(developer, site, tmp_path)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _developer_on_production(developer, site, production, tmp_path):
    jobs_before = Job.objects.count()
    attempts = [
        developer.post(f"/api/environments/{production.id}/magic-login"),
        developer.post(f"/api/environments/{production.id}/deploy", {"source_type": "git", "source_ref": "main"},
                       format="json"),
        upload(developer, production, make_tar(tmp_path / "theme.tar.gz", THEME)),
        developer.post(f"/api/environments/{production.id}/health-check"),
        developer.delete(f"/api/sites/{site.id}"),
    ]
    for response in attempts:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        assert "environments.manage_production" in response.json()["details"]["missing"]
    assert Job.objects.count() == jobs_before
    assert not AuditEntry.objects.filter(action="environment.magic_login").exists()
    assert AuditEntry.objects.filter(user__email="dev@example.test", result="denied").count() == len(attempts)


def _developer_on_staging(developer, site, tmp_path):
    response = developer.post(
        f"/api/sites/{site.id}/environments",
        {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"},
        format="json",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    staging = Environment.objects.get(site=site, slug="staging")

    archive = upload(developer, staging, make_tar(tmp_path / "theme.tar.gz", THEME))
    assert archive.status_code == 201, archive.content
    job = deploy(developer, staging, "upload", archive.json()["id"])
    assert job.status == "succeeded", job_log(job.pk)

    assert magic_login_works(developer, staging)
