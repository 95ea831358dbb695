"""Repository URLs carrying credentials are refused on every way in: the API's
git repository setting and deploy, the admin's pages and deploy_environment.
Nothing is stored, no job is queued, and the answer points at the deploy key."""

import importlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.audit.models import AuditEntry
from apps.environments.models import Environment, Release
from apps.environments.repository_urls import has_credentials
from apps.jobs.models import Job
from tests.test_admin import messages_of, url

pytestmark = pytest.mark.django_db

WITH_CREDENTIALS = [
    "https://deploy:s3cret@git.example.test/agency/shop.git",
    "https://ghp_0123456789abcdef@github.com/agency/shop.git",
    "https://oauth2:glpat-xyz@gitlab.example.test/agency/shop.git",
    "https://:token@git.example.test/agency/shop.git",
    "https://git.example.test/agency/shop.git?private_token=abc",
    "ssh://git:s3cret@git.example.test/agency/shop.git",
]
WITHOUT_CREDENTIALS = [
    "https://git.example.test/agency/shop.git",
    "ssh://git@git.example.test:2222/agency/shop.git",
    "git@git.example.test:agency/shop.git",
    "https://git.example.test/agency/we@rd-name.git",
]


@pytest.fixture
def production(site_with_production):
    """An environment with a first release, as a created site has: deploys build on it."""
    _, production = site_with_production
    release = Release.objects.create(environment=production, source_type="git", source_ref="core",
                                      directory="20260101T000000Z", health="healthy")
    Environment.objects.filter(pk=production.pk).update(current_release=release,
                                                         git_repository="git@git.example.test:agency/shop.git")
    production.refresh_from_db()
    return production


@pytest.fixture
def admin_client(db):
    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_superuser=True))
    return client


def assert_refused(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "bad_request" and "deploy key" in body["message"], body
    assert "s3cret" not in response.content.decode()


@pytest.mark.parametrize("repository", WITH_CREDENTIALS)
def test_the_api_refuses_a_repository_with_credentials(api_client, production, repository):
    response = api_client.put(f"/api/environments/{production.id}/git-repository",
                              {"repository_url": repository}, format="json")
    assert_refused(response)
    assert response.json()["details"]["fields"].keys() == {"repository_url"}
    production.refresh_from_db()
    assert production.git_repository == "git@git.example.test:agency/shop.git"


@pytest.mark.parametrize("repository", WITH_CREDENTIALS)
def test_the_api_refuses_to_deploy_from_a_repository_with_credentials(api_client, production, repository):
    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "git", "source_ref": f"{repository}#main"}, format="json")
    assert_refused(response)
    assert not Job.objects.exists()


def test_a_stored_repository_with_credentials_is_not_deployed_from(api_client, production):
    # One stored before they were refused (the migration removes them; this is the second line).
    Environment.objects.filter(pk=production.pk).update(git_repository=WITH_CREDENTIALS[0])
    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "git", "source_ref": "main"}, format="json")
    assert_refused(response)
    assert not Job.objects.exists()


@pytest.mark.parametrize("repository", WITHOUT_CREDENTIALS)
def test_repositories_without_credentials_are_accepted(api_client, production, repository):
    response = api_client.put(f"/api/environments/{production.id}/git-repository",
                              {"repository_url": repository}, format="json")
    assert response.status_code == 200, response.content
    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "git", "source_ref": f"{repository}#main"}, format="json")
    assert response.status_code == 202, response.content


def test_the_admin_refuses_a_repository_with_credentials(admin_client, production):
    page_url = url(Environment, "git_repository", production.pk)
    response = admin_client.post(page_url, {"repository_url": WITH_CREDENTIALS[0]})
    assert any("deploy key" in text for text in messages_of(response))
    production.refresh_from_db()
    # (The form shows the operator what they typed; nothing keeps it.)
    assert "s3cret" not in str(list(AuditEntry.objects.values_list("details", flat=True)))
    assert production.git_repository == "git@git.example.test:agency/shop.git"


def test_the_admin_refuses_to_deploy_from_a_repository_with_credentials(admin_client, production):
    response = admin_client.post(url(Environment, "deploy", production.pk),
                                 {"git_ref": f"{WITH_CREDENTIALS[1]}#main"}, follow=True)
    assert any("deploy key" in text for text in messages_of(response))
    assert not Job.objects.exists()


@pytest.mark.parametrize("repository", WITH_CREDENTIALS)
def test_deploy_environment_refuses_a_repository_with_credentials(production, repository):
    site = production.site
    with pytest.raises(CommandError, match="bad_request: .*deploy key"):
        call_command("deploy_environment", site.slug, production.slug, "--ref", "main",
                     "--repository", repository, stdout=StringIO(), stderr=StringIO())
    assert not Job.objects.exists()


@pytest.mark.parametrize(("url_", "expected"), [(u, True) for u in WITH_CREDENTIALS]
                         + [(u, False) for u in WITHOUT_CREDENTIALS] + [("git:tok@host:path", True), ("", False)])
def test_has_credentials(url_, expected):
    assert has_credentials(url_) is expected


def test_the_migration_removes_stored_credentials():
    migration = importlib.import_module("apps.environments.migrations.0004_scrub_repository_credentials")
    assert [migration.without_credentials(u) for u in WITH_CREDENTIALS] == [
        "https://git.example.test/agency/shop.git",
        "https://github.com/agency/shop.git",
        "https://gitlab.example.test/agency/shop.git",
        "https://git.example.test/agency/shop.git",
        "https://git.example.test/agency/shop.git",
        "ssh://git@git.example.test/agency/shop.git",
    ]
    assert [migration.without_credentials(u) for u in WITHOUT_CREDENTIALS] == WITHOUT_CREDENTIALS
    assert migration.without_credentials_in_ref(f"{WITH_CREDENTIALS[0]}#v1") == "https://git.example.test/agency/shop.git#v1"
    assert migration.without_credentials_in_ref("main") == "main"
    assert not any(has_credentials(migration.without_credentials(u)) for u in WITH_CREDENTIALS)


def test_the_migration_scrubs_environments_releases_and_deploy_jobs(production):
    from django.apps import apps

    from apps.jobs.factories import JobFactory

    migration = importlib.import_module("apps.environments.migrations.0004_scrub_repository_credentials")
    leaked = WITH_CREDENTIALS[0]
    Environment.objects.filter(pk=production.pk).update(git_repository=leaked)
    release = Release.objects.create(environment=production, source_type="git", source_ref=f"{leaked}#v1",
                                     directory="20260102T000000Z")
    job = JobFactory(job_type="env_deploy", environment=production, site=production.site,
                     payload={"repository": leaked, "ref": "v1", "source_type": "git", "source_ref": f"{leaked}#v1"})
    migration.scrub(apps, None)
    production.refresh_from_db()
    release.refresh_from_db()
    job.refresh_from_db()
    clean = "https://git.example.test/agency/shop.git"
    assert production.git_repository == clean
    assert release.source_ref == f"{clean}#v1"
    assert job.payload == {"repository": clean, "ref": "v1", "source_type": "git", "source_ref": f"{clean}#v1"}
