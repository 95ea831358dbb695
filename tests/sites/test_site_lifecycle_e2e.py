"""End to end on the real local node (sshd on loopback, Nginx, PHP-FPM,
MariaDB): create sites through the API, serve them, log in with a one-time
link, prove two sites cannot read each other's files, delete a site."""

import http.client
import pwd
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apps.audit.models import AuditEntry
from apps.environments import naming
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job
from apps.sites.models import Site

pytestmark = pytest.mark.django_db(transaction=True)


def http_get(url: str, path: str | None = None, headers: dict | None = None):
    """GET through the node's Nginx on loopback with the URL's Host header."""
    parts = urlsplit(url)
    target = path or (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=30)
    try:
        connection.request("GET", target, headers={"Host": parts.hostname, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode(errors="replace"), response
    finally:
        connection.close()


def create_site(api_client, name, slug):
    response = api_client.post("/api/sites", {"name": name, "slug": slug}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    site = Site.objects.get(slug=slug)
    return site, site.environments.get(environment_type="production")


def job_log(job_id) -> str:
    job = Job.objects.get(pk=job_id)
    lines = "\n".join(line.message for line in job.log_lines.order_by("seq"))
    return f"{job.status} {job.error_code}: {job.error_message}\n{lines}"


@pytest.fixture
def two_sites(api_client, local_node):
    first = create_site(api_client, "Alpha Bakery", "alpha")
    second = create_site(api_client, "Beta Books", "beta")
    yield first, second
    for site, _ in (first, second):
        if Site.objects.filter(pk=site.pk).exists():
            job = api_client.delete(f"/api/sites/{site.id}").json()["job_id"]
            runner.run_job(job)


def test_created_sites_are_served_with_their_own_content(two_sites, api_client):
    for site, environment in two_sites:
        site.refresh_from_db()
        environment.refresh_from_db()
        assert (site.status, environment.status) == ("active", "active")
        assert environment.current_release.health == "healthy"
        assert re.fullmatch(rf"http://{environment.id.hex[:8]}\.127-0-0-1\.sslip\.io", environment.preview_url)
        status, headers, body, _ = http_get(environment.preview_url)
        assert status == 200
        assert site.name in body
        assert headers.get("X-Content-Type-Options") == "nosniff"
        detail = api_client.get(f"/api/sites/{site.id}").json()
        assert detail["primary_environment_id"] == str(environment.id)


def test_magic_login_works_once(two_sites, api_client):
    _, environment = two_sites[0]
    response = api_client.post(f"/api/environments/{environment.id}/magic-login")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"login_url", "expires_at"}
    status, headers, _, raw = http_get(body["login_url"])
    assert status == 302
    cookies = [value for name, value in raw.getheaders() if name.lower() == "set-cookie"]
    assert any(cookie.startswith("wordpress_logged_in_") for cookie in cookies)
    cookie_header = "; ".join(cookie.split(";", 1)[0] for cookie in cookies)
    status, _, body_admin, _ = http_get(environment.preview_url, "/wp-admin/", {"Cookie": cookie_header})
    assert status == 200
    assert "Dashboard" in body_admin
    status, _, _, _ = http_get(body["login_url"])
    assert status == 403
    assert AuditEntry.objects.filter(action="environment.magic_login", result="succeeded").exists()


def test_one_site_cannot_read_another_sites_files(two_sites):
    (_, first), (_, second) = two_sites
    victim = Path(naming.root(second)) / "shared" / "wp-config.php"
    probe = Path(naming.root(first)) / "current" / "probe.php"
    probe.write_text(
        "<?php $data = @file_get_contents(" + repr(str(victim)) + ");"
        " echo $data === false ? 'DENIED' : 'LEAKED:' . strlen($data);"
    )
    owner = naming.system_name(first)
    shutil.chown(probe, owner, "www-data")
    try:
        status, _, body, _ = http_get(first.preview_url, "/probe.php")
        assert status == 200
        assert body.strip() == "DENIED"
    finally:
        probe.unlink()


def test_site_validation(api_client, local_node):
    bad = api_client.post("/api/sites", {"name": "X", "slug": "Not A Slug"}, format="json")
    assert bad.status_code == 400 and "slug" in bad.json()["details"]["fields"]
    missing = api_client.post("/api/sites", {"slug": "ok"}, format="json")
    assert missing.status_code == 400
    extra = api_client.post("/api/sites", {"name": "X", "slug": "ok", "plan": "gold"}, format="json")
    assert extra.status_code == 400
    first = api_client.post("/api/sites", {"name": "X", "slug": "dupe"}, format="json")
    assert first.status_code == 202
    again = api_client.post("/api/sites", {"name": "Y", "slug": "dupe"}, format="json")
    assert again.status_code == 409
    # The first one is only queued: cancel it so nothing half-made stays around.
    api_client.post(f"/api/jobs/{first.json()['job_id']}/cancel")
    assert Site.objects.filter(slug="dupe").count() == 1


def test_magic_login_needs_an_active_environment(two_sites, api_client):
    _, environment = two_sites[0]
    Environment.objects.filter(pk=environment.pk).update(status="failed")
    response = api_client.post(f"/api/environments/{environment.id}/magic-login")
    assert response.status_code == 409
    assert response.json()["code"] == "environment_not_active"


def test_deleting_a_site_removes_it_from_the_node(api_client, local_node):
    site, environment = create_site(api_client, "Gamma", "gamma")
    name = naming.system_name(environment)
    root = Path(naming.root(environment))
    assert root.exists() and Path(naming.vhost_path(environment)).exists()
    response = api_client.delete(f"/api/sites/{site.id}")
    assert response.status_code == 202
    assert runner.run_job(response.json()["job_id"]) == "succeeded"
    assert not root.exists()
    assert not Path(naming.vhost_path(environment)).exists()
    assert not Path(naming.pool_path(environment)).exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    databases = subprocess.run(["mariadb", "--batch", "-N", "-e", "SHOW DATABASES"], capture_output=True, text=True).stdout
    assert name not in databases.split()
    assert api_client.get(f"/api/sites/{site.id}").status_code == 404
    # Its host name now falls to the default server, which answers nothing (444).
    with pytest.raises(http.client.RemoteDisconnected):
        http_get(environment.preview_url)


def test_a_failed_step_fails_the_site_and_a_retry_finishes_the_work(api_client, local_node):
    response = api_client.post("/api/sites", {"name": "Delta", "slug": "delta"}, format="json")
    job_id = response.json()["job_id"]
    site = Site.objects.get(slug="delta")
    environment = site.environments.get()
    obstacle = Path(naming.pool_path(environment))
    obstacle.mkdir()  # a directory where the PHP-FPM pool file must go
    try:
        assert runner.run_job(job_id) == "failed"
        job = Job.objects.get(pk=job_id)
        assert job.error_code == "remote_step_failed"
        assert "PHP-FPM pool" in job.error_message and str(obstacle) in job.error_message
        site.refresh_from_db()
        environment.refresh_from_db()
        assert (site.status, environment.status) == ("failed", "failed")
        assert "site_create failed" in site.status_reason
        # Retrying before the reset is refused: failed -> active needs the reset.
        assert api_client.post(f"/api/jobs/{job_id}/retry").json()["code"] == "job_not_retryable"
    finally:
        obstacle.rmdir()
    assert api_client.post(f"/api/environments/{environment.id}/reset").status_code == 200
    assert api_client.post(f"/api/sites/{site.id}/reset").status_code == 200
    retry = api_client.post(f"/api/jobs/{job_id}/retry")
    assert retry.status_code == 202
    assert runner.run_job(retry.json()["job_id"]) == "succeeded", job_log(retry.json()["job_id"])
    site.refresh_from_db()
    environment.refresh_from_db()
    assert (site.status, environment.status) == ("active", "active")
    assert http_get(environment.preview_url)[0] == 200
    # One release directory, one user, one database: nothing was made twice.
    assert [p.name for p in (Path(naming.root(environment)) / "releases").iterdir()] == [environment.current_release.directory]
    # And a further run of the node program finds everything in place.
    from apps.environments import node_ops

    again = node_ops.setup(environment, release=environment.current_release.directory, install={
        "title": "Delta", "admin_user": "x", "admin_email": "x@example.test", "admin_password": "unused-password"})
    assert again["changed"] == []
    api_client.delete(f"/api/sites/{site.id}")
    runner.run_job(Job.objects.filter(job_type="site_delete").latest("created_at").pk)
