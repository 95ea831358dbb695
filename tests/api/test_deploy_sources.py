"""Deploy sources through the API: archives uploaded and checked before they
are kept, the environment's git repository and its deploy key, and what a
deploy request for each source type accepts."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.environments.models import DeployArchive, Environment
from apps.jobs.models import Job
from tests.environments.archives import make_tar, make_zip

pytestmark = pytest.mark.django_db

THEME = [("site/themes/lark/style.css", "file", "/* Theme Name: Lark */"),
         ("site/themes/lark/index.php", "file", "<?php echo 'lark';")]


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    settings.DEPLOY_ARCHIVE_DIR = tmp_path / "deploy-archives"
    return settings.DEPLOY_ARCHIVE_DIR


@pytest.fixture
def site_with_production(site_with_production):
    """With a first release, as a created site has: deploys build on it."""
    from apps.environments.models import Release

    site, production = site_with_production
    release = Release.objects.create(environment=production, source_type="git", source_ref="core",
                                     directory="20260101T000000Z", health="healthy")
    Environment.objects.filter(pk=production.pk).update(current_release=release)
    production.refresh_from_db()
    return site, production


def upload(api_client, environment, path, name="site.tar.gz"):
    with open(path, "rb") as handle:
        data = handle.read()
    return api_client.post(f"/api/environments/{environment.id}/deploy-archives",
                           {"file": SimpleUploadedFile(name, data)}, format="multipart")


def stored_files(archive_dir):
    return sorted(p.name for p in archive_dir.iterdir()) if archive_dir.exists() else []


def test_a_good_archive_is_stored_and_deployable(api_client, site_with_production, tmp_path, archive_dir):
    _, production = site_with_production
    response = upload(api_client, production, make_tar(tmp_path / "a.tar.gz", THEME))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["layout"], body["archive_format"], body["environment_id"]) == ("wp-content", "tar", str(production.id))
    assert len(body["sha256"]) == 64 and body["size_bytes"] > 0
    assert stored_files(archive_dir) == [body["id"]]

    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "upload", "source_ref": body["id"]}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.job_type, job.payload["source_type"], job.payload["archive_id"]) == ("env_deploy", "upload", body["id"])


@pytest.mark.parametrize("entries, problem", [
    (THEME + [("../../etc/cron.d/evil", "file", "x")], "parent directory"),
    (THEME + [("site/themes/lark/passwd", "symlink", "/etc/passwd")], "leads outside"),
    (THEME + [("site/themes/lark/up", "symlink", "../../../../..")], "leads outside"),
    ([("README.md", "file", "x")], "holds neither"),
])
def test_a_malicious_or_unusable_archive_is_refused_and_not_kept(api_client, site_with_production, tmp_path,
                                                                  archive_dir, entries, problem):
    _, production = site_with_production
    response = upload(api_client, production, make_tar(tmp_path / "bad.tar.gz", entries))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "archive_invalid" and problem in body["message"]
    assert any(problem in line for line in body["details"]["problems"])
    assert not DeployArchive.objects.exists() and stored_files(archive_dir) == []


def test_uploads_over_the_limit_and_wrong_bodies_are_refused(api_client, site_with_production, tmp_path, settings,
                                                             archive_dir):
    _, production = site_with_production
    settings.DEPLOY_ARCHIVE_MAX_BYTES = 200
    big = make_zip(tmp_path / "big.zip", THEME + [("site/themes/lark/big.txt", "file", "x" * 4000)])
    response = upload(api_client, production, big, "big.zip")
    assert response.status_code == 413 and response.json()["code"] == "upload_too_large"
    assert response.json()["details"]["max_bytes"] == 200

    response = api_client.post(f"/api/environments/{production.id}/deploy-archives", {"file": "x"}, format="json")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    response = api_client.post(f"/api/environments/{production.id}/deploy-archives", {"other": "x"}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    response = upload(api_client, production, make_tar(tmp_path / "n.tar.gz", THEME))
    assert response.status_code == 201
    missing = "00000000-0000-4000-8000-000000000000"
    response = api_client.post(f"/api/environments/{missing}/deploy-archives", {"file": SimpleUploadedFile("a", b"x")},
                               format="multipart")
    assert response.status_code == 404
    assert DeployArchive.objects.count() == 1 and len(stored_files(archive_dir)) == 1


def test_only_the_last_archives_are_kept(api_client, site_with_production, tmp_path, settings, archive_dir):
    _, production = site_with_production
    settings.DEPLOY_ARCHIVES_KEPT = 2
    ids = [upload(api_client, production, make_tar(tmp_path / f"{n}.tar.gz", THEME)).json()["id"] for n in range(4)]
    kept = set(DeployArchive.objects.values_list("id", flat=True))
    assert {str(pk) for pk in kept} == set(ids[-2:]) and set(stored_files(archive_dir)) == set(ids[-2:])


def test_an_archive_deploys_only_to_its_own_environment(api_client, site_with_production, tmp_path):
    from apps.environments.factories import EnvironmentFactory

    site, production = site_with_production
    staging = EnvironmentFactory(site=site, node=production.node, slug="staging", environment_type="staging")
    archive_id = upload(api_client, staging, make_tar(tmp_path / "s.tar.gz", THEME)).json()["id"]
    for ref in (archive_id, "not-a-uuid"):
        response = api_client.post(f"/api/environments/{production.id}/deploy",
                                   {"source_type": "upload", "source_ref": ref}, format="json")
        assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert not Job.objects.filter(job_type="env_deploy").exists()


def test_the_git_repository_setting_brings_a_deploy_key(api_client, site_with_production):
    _, production = site_with_production
    url = f"/api/environments/{production.id}/git-repository"
    assert api_client.get(url).json() == {"repository_url": "", "deploy_key_public": ""}

    response = api_client.put(url, {"repository_url": "git@git.example.test:agency/shop.git"}, format="json")
    assert response.status_code == 200, response.content
    key = response.json()["deploy_key_public"]
    assert key.startswith("ssh-ed25519 ") and key.endswith(f"-{production.slug}")
    stored = Environment.objects.get(pk=production.pk)
    assert stored.git_repository == "git@git.example.test:agency/shop.git"
    assert "OPENSSH PRIVATE KEY" in stored.deploy_key_private
    # The private half is never shown.
    assert "PRIVATE" not in response.content.decode() and "PRIVATE" not in api_client.get(url).content.decode()

    # Changing the repository keeps the key (it is already installed at the repository host).
    response = api_client.put(url, {"repository_url": "https://git.example.test/agency/shop.git"}, format="json")
    assert response.json()["deploy_key_public"] == key
    # Unless a new one is asked for.
    response = api_client.put(url, {"repository_url": "https://git.example.test/agency/shop.git",
                                    "new_deploy_key": True}, format="json")
    assert response.status_code == 200 and response.json()["deploy_key_public"] not in ("", key)
    assert "new_deploy_key" not in response.json()

    for bad in ({"repository_url": "ext::sh -c evil"}, {"repository_url": "-oProxyCommand=x"}, {"other": 1}, {}):
        response = api_client.put(url, bad, format="json")
        assert response.status_code == 400 and response.json()["code"] == "bad_request", bad
    assert Environment.objects.get(pk=production.pk).git_repository == "https://git.example.test/agency/shop.git"


def test_a_bare_ref_deploys_from_the_environments_repository(api_client, site_with_production):
    _, production = site_with_production
    deploy = f"/api/environments/{production.id}/deploy"
    response = api_client.post(deploy, {"source_type": "git", "source_ref": "main"}, format="json")
    assert response.status_code == 400 and "no git repository" in response.json()["message"]

    api_client.put(f"/api/environments/{production.id}/git-repository",
                   {"repository_url": "https://git.example.test/agency/shop.git"}, format="json")
    response = api_client.post(deploy, {"source_type": "git", "source_ref": "v2.1"}, format="json")
    assert response.status_code == 202, response.content
    payload = Job.objects.get(pk=response.json()["job_id"]).payload
    assert (payload["repository"], payload["ref"]) == ("https://git.example.test/agency/shop.git", "v2.1")
    assert "deploy_key" not in str(payload)  # the key is read when the job runs, never stored with it


def test_local_repositories_are_refused_unless_the_setting_allows_them(api_client, site_with_production, settings):
    _, production = site_with_production
    url = f"/api/environments/{production.id}/git-repository"
    settings.GIT_ALLOW_LOCAL_REPOSITORIES = False
    for local in ("file:///srv/site.git", "/srv/site.git", "/etc"):
        response = api_client.put(url, {"repository_url": local}, format="json")
        assert response.status_code == 400 and response.json()["code"] == "bad_request", local
        assert "local repositories" in response.json()["details"]["fields"]["repository_url"][0]
        response = api_client.post(f"/api/environments/{production.id}/deploy",
                                   {"source_type": "git", "source_ref": f"{local}#main"}, format="json")
        assert response.status_code == 400 and "local repositories" in str(response.json()["details"]), local
    assert Environment.objects.get(pk=production.pk).git_repository == ""
    assert not Job.objects.filter(job_type="env_deploy").exists()

    settings.GIT_ALLOW_LOCAL_REPOSITORIES = True  # the test suite's own setting
    assert api_client.put(url, {"repository_url": "file:///srv/site.git"}, format="json").status_code == 200
