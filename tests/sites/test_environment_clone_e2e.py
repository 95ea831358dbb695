"""End to end on the real local node: clone a site's production environment
to staging through the API, see both serve their own copy, prove the copy has
its own user, pool and database and none of production's URLs, refuse bad
requests, then delete the site with both environments."""

import io
import json
import pwd
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from apps.environments import naming, node_ops
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job
from apps.nodes import bundle
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)


def sql(database: str, statement: str) -> str:
    """One statement as root over the socket, the node's own way of reaching MariaDB."""
    result = subprocess.run(["mariadb", "--batch", "--skip-column-names", database, "-e", statement],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def wp_helper(environment, request: dict) -> dict:
    """The WordPress helper the panel installs on the node, run as the environment's user."""
    request = dict(request, root=naming.root(environment), url=environment.preview_url)
    result = subprocess.run(
        ["runuser", "-u", naming.system_name(environment), "--", "php", f"{bundle.REMOTE_DIR}/pressluft-wp.php"],
        input=json.dumps(request), capture_output=True, text=True, timeout=120,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["ok"], answer
    return answer


def database_dump(name: str) -> str:
    return subprocess.run(["mariadb-dump", "--skip-comments", name], capture_output=True, text=True, check=True).stdout


def fresh(url: str) -> tuple[int, str]:
    """GET past the FastCGI page cache (its key includes the query string)."""
    status, _, body, _ = http_get(url, f"/?nocache={uuid.uuid4().hex}")
    return status, body


def test_clone_production_to_staging(api_client, local_node):
    site, production = create_site(api_client, "Delta Deli", "delta")
    try:
        _clone_and_check(api_client, site, production)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _clone_and_check(api_client, site, production):
    # An upload in production, to see it copied and served by the clone.
    upload = Path(naming.root(production)) / "shared" / "uploads" / "2026" / "probe.txt"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("uploaded in production\n")
    subprocess.run(["chown", "-R", f"{naming.system_name(production)}:www-data", str(upload.parent)], check=True)
    response = api_client.post(
        f"/api/sites/{site.id}/environments",
        {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"},
        format="json",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    job = Job.objects.get(pk=job_id)
    assert job.job_type == "env_create"
    staging = Environment.objects.get(site=site, slug="staging")
    assert staging.status == "cloning"
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)

    staging.refresh_from_db()
    production.refresh_from_db()
    site.refresh_from_db()
    assert (site.status, production.status, staging.status) == ("active", "active", "active")
    assert staging.environment_type == "staging"
    assert staging.source_environment_id == production.id
    assert staging.node_id == production.node_id
    assert staging.current_release.health == "healthy"
    assert staging.preview_url != production.preview_url
    listed = api_client.get(f"/api/sites/{site.id}/environments").json()
    assert {item["slug"] for item in listed} == {"production", "staging"}

    # Both answer with their own host in their links, and only their own.
    prod_host = urlsplit(production.preview_url).hostname
    staging_host = urlsplit(staging.preview_url).hostname
    for environment, own, other in ((production, prod_host, staging_host), (staging, staging_host, prod_host)):
        status, body = fresh(environment.preview_url)
        assert status == 200, body[:500]
        assert f"http://{own}/" in body
        assert other not in body
        assert "Delta Deli" in body

    # The copied database holds no trace of production's host.
    result = Job.objects.get(pk=job_id).result
    assert result["url_rewrite"]["rewritten"] is True
    assert set(result["url_rewrite"]["remaining"].values()) == {0}, result
    staging_db, production_db = naming.system_name(staging), naming.system_name(production)
    assert prod_host not in database_dump(staging_db)
    assert sql(staging_db, "SELECT COUNT(*) FROM wp_posts") == sql(production_db, "SELECT COUNT(*) FROM wp_posts")
    assert sql(staging_db, "SELECT option_value FROM wp_options WHERE option_name='home'") == staging.preview_url

    # Search engines are discouraged on staging only.
    assert sql(staging_db, "SELECT option_value FROM wp_options WHERE option_name='blog_public'") == "0"
    assert sql(production_db, "SELECT option_value FROM wp_options WHERE option_name='blog_public'") == "1"

    _staging_safeguards(api_client, staging, production)

    # Its own Linux user, PHP-FPM pool, database and files.
    owner = pwd.getpwnam(staging_db)
    assert owner.pw_name != naming.system_name(production)
    root = Path(naming.root(staging))
    current = root / "current"
    assert current.is_symlink() and (current / "wp-load.php").exists()
    _code_is_shared_and_unwritable(staging, production)
    assert (current / "wp-config.php").resolve() == root / "shared" / "wp-config.php"
    assert (current / "wp-content" / "uploads").resolve() == root / "shared" / "uploads"
    pool = Path(naming.pool_path(staging)).read_text()
    assert f"user = {staging_db}" in pool and f"/run/php/{staging_db}.sock" in pool
    assert Path(naming.vhost_path(staging)).exists()
    assert sql("", f"SHOW DATABASES LIKE '{staging_db}'") == staging_db
    assert f"'{staging_db}'" in (root / "shared" / "wp-config.php").read_text()

    copied = root / "shared" / "uploads" / "2026" / "probe.txt"
    assert copied.read_text() == "uploaded in production\n" and copied.stat().st_uid == owner.pw_uid
    status, _, text, _ = http_get(staging.preview_url, "/wp-content/uploads/2026/probe.txt")
    assert status == 200 and text == "uploaded in production\n"

    # Running the node program again (a job re-run after a crash) keeps the copy as it is.
    again = node_ops.clone(staging, production, release=staging.current_release.directory, wp_options={"blog_public": "0"})
    assert "copy" not in again["changed"] and again["release"] == staging.current_release.directory
    assert fresh(staging.preview_url)[0] == 200

    # A change in staging stays in staging.
    wp_helper(staging, {"command": "option-set", "name": "blogname", "value": "Delta Staging Copy"})
    status, body = fresh(staging.preview_url)
    assert status == 200 and "Delta Staging Copy" in body
    status, body = fresh(production.preview_url)
    assert status == 200 and "Delta Deli" in body and "Delta Staging Copy" not in body
    assert wp_helper(production, {"command": "option-get", "name": "blogname"})["value"] == "Delta Deli"

    _clone_with_the_command(site, staging)
    _bad_requests(api_client, site, production)

    # Deleting the site removes both environments from the node.
    response = api_client.delete(f"/api/sites/{site.id}")
    assert response.status_code == 202, response.content
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    for environment in (production, staging):
        name = naming.system_name(environment)
        assert not Path(naming.root(environment)).exists()
        assert not Path(naming.pool_path(environment)).exists()
        assert not Path(naming.vhost_path(environment)).exists()
        assert sql("", f"SHOW DATABASES LIKE '{name}'") == ""
        with pytest.raises(KeyError):
            pwd.getpwnam(name)


def _code_is_shared_and_unwritable(staging, production):
    """The clone's code is hardlinked to production's, and neither
    environment's user can change a shared file or add one to a release."""
    clone_code = Path(naming.root(staging)) / "current"
    production_code = Path(naming.root(production)) / "current"
    for relative in ("wp-load.php", "wp-includes/version.php", "wp-content/mu-plugins/pressluft-login.php"):
        mine, theirs = (clone_code / relative).stat(), (production_code / relative).stat()
        assert mine.st_ino == theirs.st_ino and mine.st_nlink >= 2, relative
        assert mine.st_uid == 0 and mine.st_mode & 0o022 == 0, (relative, oct(mine.st_mode))
    shared = (clone_code / "wp-load.php").resolve()
    before = shared.read_bytes()
    for environment in (staging, production):
        user = naming.system_name(environment)
        for code in (f"open({str(shared)!r}, 'a').write('x')",
                     f"open({str(shared.parent / 'added.php')!r}, 'w').write('x')"):
            attempt = subprocess.run(["runuser", "-u", user, "--", "python3", "-c", code], capture_output=True, text=True)
            assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, (user, code, attempt.stderr)
    assert shared.read_bytes() == before and not (shared.parent / "added.php").exists()


STAGING_MARKER = "Staging environment — mail is held, search engines are discouraged"


def header(headers: dict, name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def wp_admin_dashboard(api_client, environment) -> str:
    """wp-admin's dashboard as the environment's administrator, through a one-time login link."""
    response = api_client.post(f"/api/environments/{environment.id}/magic-login")
    assert response.status_code == 200, response.content
    status, _, _, raw = http_get(response.json()["login_url"])
    assert status == 302
    cookies = [value for name, value in raw.getheaders() if name.lower() == "set-cookie"]
    cookie_header = "; ".join(cookie.split(";", 1)[0] for cookie in cookies)
    status, _, body, _ = http_get(environment.preview_url, "/wp-admin/", {"Cookie": cookie_header})
    assert status == 200 and "Dashboard" in body, body[:500]
    return body


def _staging_safeguards(api_client, staging, production):
    """Mail held, search engines discouraged, wp-admin marked: on staging only,
    although both releases carry the same must-use plugin."""
    for environment in (staging, production):
        plugin = Path(naming.root(environment)) / "current" / "wp-content" / "mu-plugins" / "pressluft-staging.php"
        assert plugin.is_file()

    status, headers, _, _ = http_get(staging.preview_url, f"/?nocache={uuid.uuid4().hex}")
    assert status == 200
    assert "noindex" in (header(headers, "X-Robots-Tag") or ""), headers
    status, headers, _, _ = http_get(production.preview_url, f"/?nocache={uuid.uuid4().hex}")
    assert status == 200
    assert header(headers, "X-Robots-Tag") is None, headers
    # WordPress itself answers blog_public as 0 on staging, whatever the database holds.
    sql(naming.system_name(staging), "UPDATE wp_options SET option_value='1' WHERE option_name='blog_public'")
    try:
        assert str(wp_helper(staging, {"command": "option-get", "name": "blog_public"})["value"]) == "0"
    finally:
        sql(naming.system_name(staging), "UPDATE wp_options SET option_value='0' WHERE option_name='blog_public'")
    assert str(wp_helper(production, {"command": "option-get", "name": "blog_public"})["value"]) == "1"

    # A mail sent through WordPress on staging is not sent, and is recorded.
    answer = wp_helper(staging, {"command": "send-test-mail", "to": "customer@example.com",
                                 "subject": "Your order 1234", "message": "Thanks"})
    assert answer["sent"] is False
    held = wp_helper(staging, {"command": "option-get", "name": "pressluft_held_mail"})["value"]
    assert held[-1]["to"] == "customer@example.com" and held[-1]["subject"] == "Your order 1234", held
    assert held[-1]["time"]
    # Only the last 50 are kept.
    for number in range(51):
        wp_helper(staging, {"command": "send-test-mail", "to": "a@example.com", "subject": f"bulk {number}"})
    held = wp_helper(staging, {"command": "option-get", "name": "pressluft_held_mail"})["value"]
    assert len(held) == 50 and held[-1]["subject"] == "bulk 50" and held[0]["subject"] == "bulk 1"
    assert wp_helper(production, {"command": "option-get", "name": "pressluft_held_mail"})["value"] is None

    # wp-admin says where the operator is.
    staging_admin = wp_admin_dashboard(api_client, staging)
    assert STAGING_MARKER in staging_admin and "wp-admin-bar-pressluft-staging" in staging_admin
    production_admin = wp_admin_dashboard(api_client, production)
    assert STAGING_MARKER not in production_admin and "wp-admin-bar-pressluft-staging" not in production_admin


def _clone_with_the_command(site, staging):
    """manage.py clone_environment --wait copies any environment (here the
    staging one) and prints the job's log; the copy is safe by default too."""
    out, err = io.StringIO(), io.StringIO()
    call_command("clone_environment", site.slug, "staging", "--name", "QA", "--slug", "qa", "--type", "clone",
                 "--wait", stdout=out, stderr=err)
    job = Job.objects.get(pk=out.getvalue().strip())
    assert job.status == "succeeded" and job.job_type == "env_create"
    assert "copy the database of" in err.getvalue() and "is ready" in err.getvalue(), err.getvalue()
    copy = Environment.objects.get(site=site, slug="qa")
    assert (copy.status, copy.environment_type, copy.source_environment_id) == ("active", "clone", staging.id)
    status, headers, body, _ = http_get(copy.preview_url, f"/?nocache={uuid.uuid4().hex}")
    assert status == 200 and "Delta Staging Copy" in body
    assert "noindex" in (header(headers, "X-Robots-Tag") or "")


def _bad_requests(api_client, site, production):
    url = f"/api/sites/{site.id}/environments"
    body = {"name": "Another", "slug": "another", "type": "clone", "promotion_preset": "content-protect"}
    before = Environment.objects.filter(site=site).count()

    response = api_client.post(url, dict(body, type="production"), format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict", response.content
    response = api_client.post(url, dict(body, slug="staging"), format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict", response.content
    response = api_client.post(url, dict(body, source_environment_id=str(uuid.uuid4())), format="json")
    assert response.status_code == 400 and "source_environment_id" in response.json()["details"]["fields"]
    response = api_client.post(url, dict(body, slug="Not A Slug"), format="json")
    assert response.status_code == 400 and "slug" in response.json()["details"]["fields"]
    response = api_client.post(url, dict(body, type="sandbox"), format="json")
    assert response.status_code == 400
    response = api_client.post(url, dict(body, plan="gold"), format="json")
    assert response.status_code == 400
    response = api_client.post(url, {"name": "X"}, format="json")
    assert response.status_code == 400
    response = api_client.post(f"/api/sites/{uuid.uuid4()}/environments", body, format="json")
    assert response.status_code == 404

    # A source that is not active cannot be copied.
    Environment.objects.filter(pk=production.pk).update(status="deploying")
    try:
        response = api_client.post(url, body, format="json")
        assert response.status_code == 409 and response.json()["code"] == "environment_not_active", response.content
    finally:
        Environment.objects.filter(pk=production.pk).update(status="active")
    assert Environment.objects.filter(site=site).count() == before
