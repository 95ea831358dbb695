"""A release switch no longer reloads PHP-FPM (apps/nodes/remote/php_opcache.py):
on the real local node, the first request after a deploy or a rollback runs
the new release's code, and a wp-config.php written anew (one real path across releases,
shared/) counts from the next request, even while the opcache still held
the old one and would not have looked at the file again for a moment."""

import os
import re
import time
import uuid
from pathlib import Path

import pytest

from apps.environments import naming, node_ops
from apps.jobs import runner
from apps.nodes.remote_exec import run_program
from tests.sites.test_deploy_e2e import commit, deploy, make_repository, readable_directory
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

# What the probe shows: the release's own mark, a wp-config.php constant, a PHP file in the uploads
# (shared/, one real path across releases, as some plugins keep their settings).
PROBE = (
    "<?php\n"
    "if ( isset( $_GET['pressluft-probe'] ) ) {\n"
    "\theader( 'Content-Type: text/plain' );\n"
    "\t$kept = WP_CONTENT_DIR . '/uploads/pressluft-probe.php';\n"
    "\techo 'release=MARK config=' . ( defined( 'PRESSLUFT_PROBE' ) ? PRESSLUFT_PROBE : 'none' )\n"
    "\t\t. ' uploads=' . ( is_file( $kept ) ? include $kept : 'none' );\n"
    "\texit;\n"
    "}\n"
    "if ( isset( $_GET['pressluft-opcache-api'] ) ) {\n"
    "\theader( 'Content-Type: text/plain' );\n"
    "\techo 'status=' . ( is_array( @opcache_get_status( false ) ) ? 'open' : 'restricted' )\n"
    "\t\t. ' reset=' . ( @opcache_reset() ? 'open' : 'restricted' );\n"
    "\texit;\n"
    "}\n"
)
SHOWN = re.compile(r"release=(\S+) config=(\S+) uploads=(\S+)")


def probe_code(mark: str) -> str:
    return PROBE.replace("MARK", mark)


def probe(environment) -> dict:
    """One request through Nginx and the environment's pool (a fresh query: never a cached page)."""
    status, _, body, _ = http_get(environment.preview_url, f"/?pressluft-probe={uuid.uuid4().hex}")
    match = SHOWN.search(body)
    assert status == 200 and match, (status, body[:500])
    return dict(zip(("release", "config", "uploads"), match.groups()))


def backdate(path: Path) -> None:
    """Older than opcache.file_update_protection: the next request caches the file."""
    moment = time.time() - 600
    os.utime(path, (moment, moment), follow_symlinks=False)


def write_config(environment, value: str) -> dict:
    params = node_ops.write_config_params(environment)
    marker = "define( 'WP_DEBUG', false );"
    assert marker in params["wp_config"]
    params["wp_config"] = params["wp_config"].replace(marker, f"{marker}\ndefine( 'PRESSLUFT_PROBE', '{value}' );")
    return run_program(environment.node, "env_write_config.py", params)


@pytest.fixture
def repository():
    import shutil
    parent = readable_directory("pressluft-test-repo-")
    repo = make_repository(parent / "site.git")
    commit(repo, "mu-plugins/probe.php", probe_code("v1"), "p1")
    commit(repo, "mu-plugins/probe.php", probe_code("v2"), "p2")
    yield repo
    shutil.rmtree(parent)


def asked_the_pool(job_id) -> bool:
    """The switch went through the environment's pool, not a PHP-FPM reload. (How many files it dropped is
    not asserted: other test runs on this shared node reload PHP-FPM whenever they change a pool.)"""
    log = job_log(job_id)
    assert "reloading PHP-FPM instead" not in log, log
    return re.search(r"opcache: \d+ cached file\(s\)", log) is not None


def test_switches_serve_the_new_code_at_once_without_a_reload(api_client, local_node, repository):
    site, production = create_site(api_client, "Omikron Opcache", "omikron")
    try:
        root = Path(naming.root(production))
        job = deploy(api_client, production, f"{repository}#p1")
        assert job.status == "succeeded", job_log(job.pk)
        production.refresh_from_db()
        v1 = production.current_release
        assert probe(production) == {"release": "v1", "config": "none", "uploads": "none"}

        # wp-config.php changes (as when the panel renders it anew): the opcache holds the old one, checked a
        # moment ago, and would not look at the file again for opcache.revalidate_freq seconds.
        assert write_config(production, "one")["changed"]
        backdate(root / "shared" / "wp-config.php")
        assert probe(production)["config"] == "one"
        assert probe(production)["config"] == "one"  # now cached
        assert write_config(production, "two")["changed"]
        assert probe(production)["config"] == "two"

        # A deploy: the very first request runs the new release; v1's cached files are dropped.
        assert probe(production)["release"] == "v1"
        job = deploy(api_client, production, f"{repository}#p2")
        assert job.status == "succeeded", job_log(job.pk)
        assert asked_the_pool(job.pk), job_log(job.pk)
        assert probe(production) == {"release": "v2", "config": "two", "uploads": "none"}

        # A rollback: the same, back to v1.
        response = api_client.post(f"/api/environments/{production.id}/rollback", {"release_id": str(v1.id)},
                                   format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["job_id"]
        assert runner.run_job(job_id) == "succeeded", job_log(job_id)
        assert asked_the_pool(job_id), job_log(job_id)
        assert probe(production) == {"release": "v1", "config": "two", "uploads": "none"}

        # The site's own code cannot read the opcache's status (every site's cached paths) nor empty it for
        # every site: the API is Pressluft's script's alone (opcache.restrict_api).
        status, _, body, _ = http_get(production.preview_url, f"/?pressluft-opcache-api={uuid.uuid4().hex}")
        assert status == 200 and "status=restricted reset=restricted" in body, (status, body[:300])
    finally:
        runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
