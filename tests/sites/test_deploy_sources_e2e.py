"""Deploy sources on the real local node: an uploaded archive becomes a
release; a malicious archive changes nothing, whether the panel or the node
catches it; a private repository is fetched over SSH with the environment's
own deploy key (the repository host is this machine's test sshd on loopback)."""

import io
import tarfile
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.environments import naming
from apps.environments.models import DeployArchive
from apps.jobs import runner
from apps.jobs.models import Job
from tests.environments.archives import make_tar
from tests.nodes.support import authorize
from tests.sites.test_deploy_e2e import ACTIVATE, THEME_CSS, THEME_INDEX, repository  # noqa: F401 (fixture)
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

NODE_ARCHIVE_DIR = Path("/var/lib/pressluft/deploy-archives")
THEME_ARCHIVE = [
    ("shop-theme-1.0/", "dir", ""),
    ("shop-theme-1.0/themes/pressluft-test/style.css", "file", THEME_CSS),
    ("shop-theme-1.0/themes/pressluft-test/index.php", "file", THEME_INDEX),
    ("shop-theme-1.0/mu-plugins/activate-test-theme.php", "file", ACTIVATE),
]


def upload(api_client, environment, path):
    return api_client.post(f"/api/environments/{environment.id}/deploy-archives",
                           {"file": SimpleUploadedFile(Path(path).name, Path(path).read_bytes())}, format="multipart")


def deploy(api_client, environment, source_type, source_ref):
    response = api_client.post(f"/api/environments/{environment.id}/deploy",
                               {"source_type": source_type, "source_ref": source_ref}, format="json")
    assert response.status_code == 202, response.content
    runner.run_job(response.json()["job_id"])
    return Job.objects.get(pk=response.json()["job_id"])


def magic_login_works(api_client, environment) -> bool:
    response = api_client.post(f"/api/environments/{environment.id}/magic-login")
    assert response.status_code == 200, response.content
    status, _, _, raw = http_get(response.json()["login_url"])
    cookies = [value for name, value in raw.getheaders() if name.lower() == "set-cookie"]
    return status == 302 and any(cookie.startswith("wordpress_logged_in_") for cookie in cookies)


def whole_tree_archive(environment, path) -> str:
    """A whole WordPress tree (core from the live release, a wp-content of its
    own) that also tries to bring its own wp-config.php and uploads."""
    live = (Path(naming.root(environment)) / "current").resolve()
    with tarfile.open(path, "w") as archive:
        for entry in sorted(live.iterdir()):
            if entry.name not in ("wp-content", "wp-config.php", ".pressluft-complete"):
                archive.add(entry, arcname=f"site/{entry.name}")
        for name, content in (
            ("wp-content/themes/pressluft-test/style.css", THEME_CSS),
            ("wp-content/themes/pressluft-test/index.php", THEME_INDEX),
            ("wp-content/mu-plugins/activate-test-theme.php", ACTIVATE),
            ("wp-content/uploads/shell.php", "<?php echo 'should never land';"),
            ("wp-config.php", "<?php // a foreign config"),
        ):
            data = content.encode()
            info = tarfile.TarInfo(f"site/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def release_dirs(environment):
    return sorted(p.name for p in (Path(naming.root(environment)) / "releases").iterdir())


def test_an_uploaded_archive_is_deployed_and_malicious_ones_change_nothing(api_client, local_node, tmp_path):
    site, production = create_site(api_client, "Iota Books", "iota")
    first = production.current_release

    response = upload(api_client, production, make_tar(tmp_path / "theme.tar.gz", THEME_ARCHIVE))
    assert response.status_code == 201, response.content
    archive_id = response.json()["id"]
    job = deploy(api_client, production, "upload", archive_id)
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    release = production.current_release
    assert release != first and (release.source_type, release.source_ref, release.health) == ("upload", archive_id, "healthy")
    assert job.result["archive_sha256"] == DeployArchive.objects.get(pk=archive_id).sha256
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme Iota Books" in body
    theme = Path(naming.root(production)) / "releases" / release.directory / "wp-content/themes/pressluft-test/index.php"
    assert theme.stat().st_uid == 0 and theme.stat().st_mode & 0o022 == 0
    assert not (NODE_ARCHIVE_DIR / archive_id).exists()  # the node's copy goes once unpacked
    # The archive's own mu-plugins/ replaced the release's: Pressluft's plugins are back all the same.
    assert magic_login_works(api_client, production)

    # A whole WordPress tree: its wp-content replaces the release's, but uploads and wp-config.php stay shared.
    response = upload(api_client, production, whole_tree_archive(production, tmp_path / "whole.tar"))
    assert response.status_code == 201 and response.json()["layout"] == "wordpress", response.content
    job = deploy(api_client, production, "upload", response.json()["id"])
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    live = Path(naming.root(production)) / "releases" / production.current_release.directory
    assert not (live / "wp-content/themes/twentytwentythree").exists()
    assert (live / "wp-content/uploads").resolve() == Path(naming.root(production)) / "shared" / "uploads"
    assert (live / "wp-config.php").resolve() == Path(naming.root(production)) / "shared" / "wp-config.php"
    assert not (Path(naming.root(production)) / "shared" / "uploads" / "shell.php").exists()
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme Iota Books" in body
    assert magic_login_works(api_client, production)
    release = production.current_release

    # The panel refuses a malicious archive at the upload: nothing is stored or queued.
    escape = f"/tmp/pressluft-escape-{uuid.uuid4().hex}.php"
    malicious = make_tar(tmp_path / "evil.tar.gz", THEME_ARCHIVE + [
        ("shop-theme-1.0/../../../../../.." + escape, "file", "<?php echo 'owned';"),
        ("shop-theme-1.0/themes/pressluft-test/secrets", "symlink", "/etc"),
    ])
    response = upload(api_client, production, malicious)
    assert response.status_code == 400, response.content
    problems = response.json()["details"]["problems"]
    assert response.json()["code"] == "archive_invalid"
    assert any("parent directory" in p for p in problems) and any("leads outside" in p for p in problems)
    assert DeployArchive.objects.filter(environment=production).count() == 2

    # The node checks again: an archive that reached it some other way is refused there, nothing changed.
    before = release_dirs(production)
    smuggled = DeployArchive.objects.create(
        environment=production, filename="smuggled.tar.gz", archive_format="tar", layout="wp-content",
        size_bytes=Path(malicious).stat().st_size, unpacked_bytes=0, sha256="0" * 64,
    )
    smuggled.stored_path.write_bytes(Path(malicious).read_bytes())
    job = deploy(api_client, production, "upload", str(smuggled.pk))
    assert (job.status, job.error_code) == ("failed", "archive_invalid"), job_log(job.pk)
    assert "parent directory" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == release
    assert release_dirs(production) == before and not Path(escape).exists()
    assert not (NODE_ARCHIVE_DIR / str(smuggled.pk)).exists()
    assert http_get(production.preview_url)[0] == 200

    # Old releases are pruned on the node (the last 5 stay), and their rows go with them.
    for _ in range(3):
        assert deploy(api_client, production, "upload", archive_id).status == "succeeded"
    on_node = [name for name in release_dirs(production) if not name.startswith(".")]
    assert len(on_node) == 5 and first.directory not in on_node
    assert sorted(production.releases.values_list("directory", flat=True)) == sorted(on_node)

    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
    assert not DeployArchive.objects.exists() and not Path(smuggled.stored_path).exists()


def test_a_private_repository_is_fetched_with_the_environments_deploy_key(api_client, local_node, node_sshd,
                                                                          repository):
    site, production = create_site(api_client, "Kappa Tools", "kappa")
    # The repository host: this machine's test sshd, which knows nothing of the deploy key yet.
    repository_url = f"ssh://root@127.0.0.1:{node_sshd.port}{repository}"
    response = api_client.put(f"/api/environments/{production.id}/git-repository", {"repository_url": repository_url},
                              format="json")
    assert response.status_code == 200, response.content
    deploy_key = response.json()["deploy_key_public"]

    job = deploy(api_client, production, "git", "v1")
    assert (job.status, job.error_code) == ("failed", "deploy_source_failed"), job_log(job.pk)
    assert "deploy key" in job.error_message
    production.refresh_from_db()
    assert production.status == "active"

    # The operator gives the repository host the deploy key: now the fetch works.
    authorize(node_sshd.authorized_keys, "restrict " + deploy_key)
    try:
        job = deploy(api_client, production, "git", "v1")
        assert job.status == "succeeded", job_log(job.pk)
    finally:
        lines = node_sshd.authorized_keys.read_text().splitlines()
        node_sshd.authorized_keys.write_text("".join(f"{line}\n" for line in lines if deploy_key not in line))
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme Kappa Tools" in body
    known_hosts = Path("/etc/pressluft/git-known-hosts") / naming.system_name(production)
    assert " ssh-ed25519 " in known_hosts.read_text()  # the host key, pinned on first use

    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
    assert not known_hosts.exists()
