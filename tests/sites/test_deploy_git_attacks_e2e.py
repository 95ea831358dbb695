"""git deploys on the real local node, attacked through the repository:

- a tree whose links lead out of it (``wp-content`` to a root-only directory
  or to /etc, ``themes/evil -> /root``, a relative ``../..`` chain) is refused
  with ``deploy_source_invalid`` before anything is built: no new release
  directory, ``current`` and the live release unchanged, nothing of the
  target in any release, the target itself untouched; a link that stays
  inside the tree is deployed as a link;
- git runs as the node's unprivileged git account: a repository only root
  can read cannot be fetched, the same one made readable can;
- a local repository (``file://`` or a path) is refused by the panel and by
  the node when PRESSLUFT_GIT_ALLOW_LOCAL_REPOSITORIES is off;
- what the site's PHP prints while the WordPress helper runs cannot forge
  the node program's outcome (an ``ERROR unsafe_path`` line after a newline)
  and reaches the error message only cut short and on one line.
"""

import os
import pwd
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.sites.test_deploy_e2e import (
    ACTIVATE,
    THEME_CSS,
    THEME_INDEX,
    deploy,
    git,
    make_repository,
    readable_directory,
)
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

GOOD_THEME = {
    "themes/pressluft-test/style.css": THEME_CSS,
    "themes/pressluft-test/index.php": THEME_INDEX,
    "mu-plugins/activate-test-theme.php": ACTIVATE,
}
# Printed by a plugin whenever the WordPress helper (PHP's CLI) loads the site.
FORGING_PLUGIN = r"""<?php
if (PHP_SAPI === 'cli') {
    fwrite(STDERR, "plugin noise\nRESULT {\"release\": \"forged\"}\n\x1b[31mred\n");
    echo json_encode(['ok' => false, 'error' => "boom\nRESULT {\"release\": \"forged\"}\nERROR unsafe_path 0 forged"]), "\n";
    exit(1);
}
"""


def replace_tree(repo: Path, tag: str, entries: dict[str, str]) -> str:
    """Commit a tree of exactly ``entries`` (path -> content, or "-> target"
    for a symbolic link) and tag it."""
    for entry in repo.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name, value in entries.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if value.startswith("-> "):
            os.symlink(value[3:], path)
        else:
            path.write_text(value)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", tag)
    git(repo, "tag", tag)
    return f"{repo}#{tag}"


def release_dirs(environment) -> list[str]:
    return sorted(p.name for p in (Path(naming.root(environment)) / "releases").iterdir())


def tree_snapshot(path: Path) -> dict:
    """Every name under ``path`` with its owner, mode and (for files) content."""
    found = {}
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(directory) / name
            info = full.lstat()
            content = full.read_bytes() if full.is_file() and not full.is_symlink() else None
            found[str(full.relative_to(path))] = (info.st_uid, info.st_mode, content)
    return found


def names_and_links(path: Path) -> tuple[set[str], set[str]]:
    """All names under ``path``, and the targets of all links (never followed)."""
    names, links = set(), set()
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            names.add(name)
            if (Path(directory) / name).is_symlink():
                links.add(os.readlink(Path(directory) / name))
    return names, links


@pytest.fixture
def site_repository():
    """A repository the node's git account can read (see readable_directory)."""
    parent = readable_directory("pressluft-test-repo-")
    yield make_repository(parent / "site.git")
    shutil.rmtree(parent)


@pytest.fixture
def root_only_target():
    """What an attacker would like to read: a directory only root can enter."""
    target = Path(tempfile.mkdtemp(prefix="pressluft-test-target-"))
    secret = target / f"pressluft-secret-{uuid.uuid4().hex}.txt"
    secret.write_text("not for the site\n")
    secret.chmod(0o600)
    yield target, secret.name
    shutil.rmtree(target)


def test_a_repository_linking_out_of_its_tree_is_refused(api_client, local_node, site_repository,
                                                         root_only_target):
    target, secret_name = root_only_target
    target_before = tree_snapshot(target)
    site, production = create_site(api_client, "Lambda Links", "lambda")
    root = Path(naming.root(production))

    # Links that stay inside the tree are fine, and stay links.
    good = replace_tree(site_repository, "inside", {
        **GOOD_THEME, "themes/pressluft-test/current.css": "-> style.css", "themes/alias": "-> pressluft-test",
    })
    job = deploy(api_client, production, good)
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    live = production.current_release
    themes = root / "releases" / live.directory / "wp-content" / "themes"
    assert os.readlink(themes / "alias") == "pressluft-test"
    assert os.readlink(themes / "pressluft-test" / "current.css") == "style.css"
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme Lambda Links" in body

    attacks = {
        # A whole WordPress tree whose wp-content is a root-only directory of the node.
        "whole": ({"wp-includes/version.php": "<?php $wp_version = '6.0';", "wp-content": f"-> {target}"},
                  "'wp-content': symbolic link"),
        # A wp-content directory that is the node's /etc (its files would be copied into the release).
        "etc": ({"wp-content": "-> /etc"}, "'wp-content': symbolic link to '/etc'"),
        "root": ({**GOOD_THEME, "themes/evil": "-> /root"}, "'themes/evil': symbolic link to '/root'"),
        "up": ({**GOOD_THEME, "themes/pressluft-test/up": "-> ../../../../../.."}, "'themes/pressluft-test/up'"),
    }
    for tag, (entries, problem) in attacks.items():
        before, current_link = release_dirs(production), os.readlink(root / "current")
        job = deploy(api_client, production, replace_tree(site_repository, f"attack-{tag}", entries))
        assert (job.status, job.error_code) == ("failed", "deploy_source_invalid"), (tag, job_log(job.pk))
        assert problem in job.error_message and "leads outside the tree" in job.error_message, job.error_message
        production.refresh_from_db()
        assert production.status == "active" and production.current_release == live, tag
        assert release_dirs(production) == before and os.readlink(root / "current") == current_link, tag
    names, links = names_and_links(root / "releases")
    assert secret_name not in names and not {"shadow", "gshadow", "sudoers"} & names
    assert not {"/etc", "/root", str(target)} & links and not any(link.startswith("../../../../") for link in links)
    assert tree_snapshot(target) == target_before
    assert http_get(production.preview_url)[0] == 200

    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_the_sites_output_cannot_forge_the_node_programs_outcome(api_client, local_node, site_repository):
    # The site's PHP, run by the WordPress helper before the switch, answers
    # with a newline and a forged ERROR line (before the fix the job failed
    # with the forged unsafe_path): the outcome stays the real one.
    site, production = create_site(api_client, "Nu Forge", "nu")
    live = production.current_release
    forging = replace_tree(site_repository, "forge", {**GOOD_THEME, "mu-plugins/forge.php": FORGING_PLUGIN})
    before = release_dirs(production)
    job = deploy(api_client, production, forging)
    assert (job.status, job.error_code) == ("failed", "deploy_check_failed"), job_log(job.pk)
    assert "\n" not in job.error_message and "boom RESULT" in job.error_message
    assert len(job.error_message) < 400
    log = job_log(job.pk)
    assert "WordPress helper stderr (written by the site's code" in log and "\\x1b[31mred" in log
    production.refresh_from_db()
    assert production.current_release == live and release_dirs(production) == before

    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_git_runs_as_the_unprivileged_account_and_local_repositories_need_the_setting(
        api_client, local_node, site_repository, settings):
    site, production = create_site(api_client, "Mu Private", "mu")
    # A repository root can read and the git account cannot: git never runs as root.
    private_parent = readable_directory("pressluft-test-private-")
    try:
        private = make_repository(private_parent / "private.git")
        private_parent.chmod(0o700)
        job = deploy(api_client, production, f"{private}#v1")
        assert (job.status, job.error_code) == ("failed", "deploy_source_failed"), job_log(job.pk)
        production.refresh_from_db()
        assert production.status == "active"
        private_parent.chmod(0o755)
        job = deploy(api_client, production, f"{private}#v1")
        assert job.status == "succeeded", job_log(job.pk)
    finally:
        shutil.rmtree(private_parent)
    account = pwd.getpwnam("pressluft-git")
    assert account.pw_uid != 0 and account.pw_shell.endswith("nologin")
    production.refresh_from_db()
    live = production.current_release

    # Local repositories are for the test suite only: with the setting off the panel refuses them...
    settings.GIT_ALLOW_LOCAL_REPOSITORIES = False
    url = f"/api/environments/{production.id}/git-repository"
    for local in (f"file://{site_repository}", str(site_repository)):
        response = api_client.put(url, {"repository_url": local}, format="json")
        assert response.status_code == 400 and response.json()["code"] == "bad_request", local
        assert "local repositories" in str(response.json()["details"])
        response = api_client.post(f"/api/environments/{production.id}/deploy",
                                   {"source_type": "git", "source_ref": f"{local}#v1"}, format="json")
        assert response.status_code == 400 and response.json()["code"] == "bad_request", local
    assert not Job.objects.filter(job_type="env_deploy", status="queued").exists()

    # ...and so does the node, for a deploy queued while they were allowed.
    settings.GIT_ALLOW_LOCAL_REPOSITORIES = True
    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "git", "source_ref": f"file://{site_repository}#v1"}, format="json")
    assert response.status_code == 202, response.content
    settings.GIT_ALLOW_LOCAL_REPOSITORIES = False
    runner.run_job(response.json()["job_id"])
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.status, job.error_code) == ("failed", "deploy_source_invalid"), job_log(job.pk)
    assert "local repository" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == live

    settings.GIT_ALLOW_LOCAL_REPOSITORIES = True
    runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
