"""The admin's Deploy and Git repository pages: the same services and checks
as the API, refusals shown to the operator, nothing changed by a bad request."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.audit.models import AuditEntry
from apps.environments.models import DeployArchive, Environment
from apps.jobs.models import Job
from tests.api.test_deploy_sources import THEME, archive_dir, site_with_production  # noqa: F401 (fixtures)
from tests.environments.archives import make_tar
from tests.test_admin import messages_of, run_action, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db):
    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_superuser=True))
    return client


def test_setting_the_repository_shows_the_deploy_key(admin_client, site_with_production):
    _, production = site_with_production
    page_url = url(Environment, "git_repository", production.pk)
    response = run_action(admin_client, Environment, "edit_git_repository", [production], _return_to_object="1")
    assert response.status_code == 302 and response["Location"] == page_url

    response = admin_client.post(page_url, {"repository_url": "git@git.example.test:agency/shop.git"})
    assert response.status_code == 200
    production.refresh_from_db()
    assert production.git_repository == "git@git.example.test:agency/shop.git"
    page = response.content.decode()
    assert production.deploy_key_public in page and "PRIVATE" not in page
    assert AuditEntry.objects.filter(action="environment.set_git_repository").exists()
    assert production.deploy_key_public in admin_client.get(url(production)).content.decode()

    response = admin_client.post(page_url, {"repository_url": "ext::sh -c evil"})
    assert any("Not a usable git repository URL" in text for text in messages_of(response))
    production.refresh_from_db()
    assert production.git_repository == "git@git.example.test:agency/shop.git"


def test_deploying_a_git_ref_from_the_admin(admin_client, site_with_production):
    _, production = site_with_production
    Environment.objects.filter(pk=production.pk).update(git_repository="https://git.example.test/shop.git")
    page_url = url(Environment, "deploy", production.pk)
    assert 'value="deploy_environment"' in admin_client.get(url(production)).content.decode()
    assert admin_client.get(page_url).status_code == 200

    response = admin_client.post(page_url, {"git_ref": "v1"})
    job = Job.objects.get(job_type="env_deploy")
    assert response.status_code == 302 and response["Location"] == url(job)
    assert (job.payload["repository"], job.payload["ref"]) == ("https://git.example.test/shop.git", "v1")

    for bad in ({}, {"git_ref": "v1", "archive": SimpleUploadedFile("a.tar.gz", b"x")}):
        response = admin_client.post(page_url, bad)
        assert response.status_code == 200 and "Give either a git ref or an archive." in response.content.decode()
    assert Job.objects.count() == 1


def test_deploying_an_archive_from_the_admin(admin_client, site_with_production, tmp_path):
    _, production = site_with_production
    page_url = url(Environment, "deploy", production.pk)
    evil = make_tar(tmp_path / "evil.tar.gz", THEME + [("site/themes/lark/x", "symlink", "/etc")])
    with open(evil, "rb") as handle:
        response = admin_client.post(page_url, {"archive": handle}, follow=True)
    assert any("archive was refused" in text and "leads outside" in text for text in messages_of(response))
    assert not Job.objects.exists() and not DeployArchive.objects.exists()

    with open(make_tar(tmp_path / "good.tar.gz", THEME), "rb") as handle:
        response = admin_client.post(page_url, {"archive": handle})
    job = Job.objects.get(job_type="env_deploy")
    assert response.status_code == 302 and response["Location"] == url(job)
    assert job.payload["archive_id"] == str(DeployArchive.objects.get().pk)
