"""Deploys on the real local node: a git ref becomes a new release, switched
atomically; a release that breaks the site is rolled back by itself; a
release WordPress cannot even load is never switched to."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

THEME_CSS = "/*\nTheme Name: Pressluft Test Theme\n*/\n"
THEME_INDEX = "<?php echo '<html><body>pressluft-test-theme ' . esc_html(get_bloginfo('name')) . '</body></html>';\n"
ACTIVATE = (
    "<?php\n"
    "add_filter('pre_option_stylesheet', function () { return 'pressluft-test'; });\n"
    "add_filter('pre_option_template', function () { return 'pressluft-test'; });\n"
)
BREAKS_PAGES = "<?php\nadd_action('template_redirect', function () { pressluft_no_such_function(); });\n"
SYNTAX_ERROR = "<?php\nthis is not php;\n"
# The page is already sent (200) when this fails: only the error log tells.
FATAL_AFTER_THE_PAGE = "<?php\nadd_action('shutdown', function () { pressluft_no_such_function_either(); });\n"


def git(repo: Path, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def readable_directory(prefix: str) -> Path:
    """A directory the node's unprivileged git account can read: git deploys
    fetch as it, and pytest's tmp_path (root's, 0700) is out of its reach."""
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    parent.chmod(0o755)
    return parent


@pytest.fixture
def repository():
    parent = readable_directory("pressluft-test-repo-")
    yield make_repository(parent / "site.git")
    shutil.rmtree(parent)


def make_repository(repo: Path) -> Path:
    (repo / "themes" / "pressluft-test").mkdir(parents=True)
    (repo / "mu-plugins").mkdir()
    git(repo.parent, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.email", "ci@example.test")
    git(repo, "config", "user.name", "CI")
    (repo / "themes" / "pressluft-test" / "style.css").write_text(THEME_CSS)
    (repo / "themes" / "pressluft-test" / "index.php").write_text(THEME_INDEX)
    (repo / "mu-plugins" / "activate-test-theme.php").write_text(ACTIVATE)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "theme")
    git(repo, "tag", "v1")
    return repo


def commit(repo: Path, path: str, content: str, tag: str):
    (repo / path).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", tag)
    git(repo, "tag", tag)


def deploy(api_client, environment, source_ref):
    response = api_client.post(
        f"/api/environments/{environment.id}/deploy", {"source_type": "git", "source_ref": source_ref}, format="json"
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    runner.run_job(job_id)
    return Job.objects.get(pk=job_id)


def test_deploys_switch_releases_and_a_broken_release_rolls_back(api_client, local_node, repository):
    site, production = create_site(api_client, "Theta Shop", "theta")
    first_release = production.current_release
    # The installed WordPress says what it is, not an upload nobody made.
    assert (first_release.source_type, first_release.source_ref) == ("core", "wordpress-core")

    job = deploy(api_client, production, f"{repository}#v1")
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    v1 = production.current_release
    assert v1 != first_release and v1.health == "healthy" and v1.source_type == "git"
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme Theta Shop" in body
    releases_dir = Path(naming.root(production)) / "releases"
    assert (releases_dir / v1.directory / "wp-content" / "themes" / "pressluft-test" / "style.css").exists()
    # Uploads and wp-config.php still come from shared/.
    assert (releases_dir / v1.directory / "wp-config.php").is_symlink()
    assert (releases_dir / v1.directory / "wp-content" / "uploads").is_symlink()

    # A release that fatals on every page passes the load check, goes live, fails its health check, and is rolled back.
    commit(repository, "mu-plugins/breaks-pages.php", BREAKS_PAGES, "v2")
    job = deploy(api_client, production, f"{repository}#v2")
    assert (job.status, job.error_code) == ("failed", "health_check_failed"), job_log(job.pk)
    assert "rolled back" in job.error_message
    production.refresh_from_db()
    site.refresh_from_db()
    assert (production.status, site.status) == ("active", "active")
    assert production.current_release == v1
    assert production.releases.get(directory=job.result["release"]).health == "unhealthy"
    assert http_get(production.preview_url)[0] == 200
    log = job_log(job.pk)
    assert "roll back to release" in log and "unhealthy" in log

    # A release WordPress cannot load is refused before the switch.
    (repository / "mu-plugins" / "breaks-pages.php").unlink()
    commit(repository, "mu-plugins/syntax.php", SYNTAX_ERROR, "v3")
    job = deploy(api_client, production, f"{repository}#v3")
    assert (job.status, job.error_code) == ("failed", "deploy_check_failed"), job_log(job.pk)
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == v1
    assert not (releases_dir / job.payload["release"]).exists()  # built, refused, removed

    # A fatal error that leaves the page answering 200 is found in the PHP error log.
    (repository / "mu-plugins" / "syntax.php").unlink()
    commit(repository, "mu-plugins/late-fatal.php", FATAL_AFTER_THE_PAGE, "v4")
    job = deploy(api_client, production, f"{repository}#v4")
    assert (job.status, job.error_code) == ("failed", "health_check_failed"), job_log(job.pk)
    assert "fatal error" in job.error_message and "rolled back" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == v1
    (repository / "mu-plugins" / "late-fatal.php").unlink()
    commit(repository, "mu-plugins/.keep", "", "v5")

    # An unknown ref changes nothing.
    job = deploy(api_client, production, f"{repository}#no-such-branch")
    assert (job.status, job.error_code) == ("failed", "deploy_source_failed")
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == v1

    # Back to the first release by hand: the test theme is gone again.
    response = api_client.post(f"/api/environments/{production.id}/rollback", {"release_id": str(first_release.id)},
                               format="json")
    assert response.status_code == 202
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    production.refresh_from_db()
    assert production.current_release == first_release
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme" not in body

    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


@pytest.mark.parametrize(
    "body",
    [
        {"source_type": "upload", "source_ref": "s3://bucket/site.tar.gz"},
        {"source_type": "git", "source_ref": "main"},
        {"source_type": "git", "source_ref": "ext::sh -c touch% /tmp/pwned#main"},
        {"source_type": "git", "source_ref": "https://git.example.test/site.git#--upload-pack=evil"},
        {"source_type": "git", "source_ref": "https://git.example.test/site.git#a..b"},
        {"source_type": "svn", "source_ref": "x"},
        {"source_type": "git"},
    ],
)
def test_bad_deploy_requests_are_refused(api_client, node, site_with_production, body):
    _, production = site_with_production
    response = api_client.post(f"/api/environments/{production.id}/deploy", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert not Job.objects.filter(job_type="env_deploy").exists()
