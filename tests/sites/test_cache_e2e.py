"""Caching end to end on the real local node: the FastCGI page cache (MISS
then HIT, BYPASS for every rule of SPEC "Caching", purge, off), the Redis
object cache drop-in (keys under the environment's own prefix only, purge
leaves other environments' keys, off removes it), both switched through the
API and carried out by env_cache_toggle and cache_purge."""

import http.client
import json
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apps.audit.models import AuditEntry
from apps.environments import naming
from apps.jobs import runner
from apps.sites.models import Site
from tests.sites.test_php_pool_isolation_e2e import php_probe
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_SECRET = Path("/etc/pressluft/redis-admin.secret")
CACHE_HEADER = "X-FastCGI-Cache"


def redis_admin(*args: str) -> str:
    done = subprocess.run(["redis-cli", "--user", "pressluft", *args], capture_output=True, text=True, check=True,
                          env=dict(os.environ, REDISCLI_AUTH=ADMIN_SECRET.read_text().strip()))
    return done.stdout.strip()


def keys_of(environment) -> list[str]:
    """Every Redis key under the environment's prefix (SCAN as the administrator)."""
    cursor, found = "0", []
    while True:
        reply = redis_admin("SCAN", cursor, "MATCH", f"{naming.redis_key_prefix(environment)}*", "COUNT", "1000")
        lines = reply.splitlines()
        cursor, found = lines[0], found + [line for line in lines[1:] if line]
        if cursor == "0":
            return found


def request(environment, method="GET", path="/", headers=None, body=None):
    host = urlsplit(environment.preview_url).hostname
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader(CACHE_HEADER)
    finally:
        connection.close()


def run(api_client, method, url, body=None):
    response = getattr(api_client, method)(url, body, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    return job_id


@pytest.fixture
def two_sites(api_client, local_node):
    sites = [create_site(api_client, "Cache Cafe", "cachecafe"), create_site(api_client, "Other Outlet", "otheroutlet")]
    yield sites
    for site, _ in sites:
        if Site.objects.filter(pk=site.pk).exists():
            runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_page_cache_misses_then_hits_bypasses_by_rule_purges_and_turns_off(two_sites, api_client):
    (_, environment), _ = two_sites
    assert environment.fastcgi_cache_enabled  # on by default
    page = f"/?page-cache={uuid.uuid4().hex}"
    assert request(environment, path=page) == (200, "MISS")
    assert request(environment, path=page) == (200, "HIT")
    assert request(environment, "HEAD", page)[1] in ("MISS", "HIT")

    bypassed = {
        "POST": request(environment, "POST", page, {"Content-Type": "application/x-www-form-urlencoded"}, "a=1"),
        "logged in": request(environment, path=page, headers={"Cookie": "wordpress_logged_in_abc=someone"}),
        "commenter": request(environment, path=page, headers={"Cookie": "comment_author_abc=Ann"}),
        "password": request(environment, path=page, headers={"Cookie": "wp-postpass_abc=x"}),
        "cart items": request(environment, path=page, headers={"Cookie": "woocommerce_items_in_cart=1"}),
        "cart hash": request(environment, path=page, headers={"Cookie": "woocommerce_cart_hash=abc"}),
        "shop session": request(environment, path=page, headers={"Cookie": "wp_woocommerce_session_abc=1"}),
        "wp-admin": request(environment, path="/wp-admin/"),
        "wp-login": request(environment, path="/wp-login.php"),
        "wp-cron": request(environment, path="/wp-cron.php"),
        "xmlrpc": request(environment, path="/xmlrpc.php"),
        "wp-json": request(environment, path="/wp-json/"),
        "rest_route": request(environment, path="/?rest_route=/"),
    }
    assert {rule: header for rule, (_, header) in bypassed.items() if header != "BYPASS"} == {}
    # A bypassed request is not stored either: asked again, still BYPASS, and the page stays cached.
    assert request(environment, path="/wp-login.php")[1] == "BYPASS"
    assert request(environment, path=page) == (200, "HIT")

    run(api_client, "post", f"/api/environments/{environment.id}/cache/purge")
    assert request(environment, path=page) == (200, "MISS")
    assert request(environment, path=page) == (200, "HIT")
    assert AuditEntry.objects.filter(action="environment.cache_purge", result="completed").exists()

    run(api_client, "patch", f"/api/environments/{environment.id}/cache", {"fastcgi_cache_enabled": False})
    environment.refresh_from_db()
    assert (environment.fastcgi_cache_enabled, environment.redis_cache_enabled) == (False, True)
    assert request(environment, path=page) == (200, None)
    assert request(environment, path=page) == (200, None)
    status, headers, _, _ = http_get(environment.preview_url, page)
    assert headers.get("X-Content-Type-Options") == "nosniff"  # the security headers stay

    run(api_client, "patch", f"/api/environments/{environment.id}/cache", {"fastcgi_cache_enabled": True})
    environment.refresh_from_db()
    assert environment.fastcgi_cache_enabled
    # What was cached before it was turned off is gone.
    assert request(environment, path=page) == (200, "MISS")
    assert request(environment, path=page) == (200, "HIT")
    status, headers, _, _ = http_get(environment.preview_url, page)
    assert headers.get("X-Content-Type-Options") == "nosniff"


OBJECT_CACHE_STATE = r"""<?php
require __DIR__ . '/wp-load.php';
global $wp_object_cache;
$fresh = class_exists('Pressluft_Object_Cache') ? new Pressluft_Object_Cache() : null;
$found = false;
if ($fresh !== null) {
    $fresh->get('alloptions', 'options', false, $found);
}
echo 'ANSWER:' . json_encode([
    'class' => get_class($wp_object_cache),
    'external' => (bool) wp_using_ext_object_cache(),
    'connected' => $fresh !== null && $fresh->is_connected(),
    'alloptions_from_redis' => $found,
]);
"""


def test_object_cache_keys_stay_under_the_environment_prefix_and_purge_spares_others(two_sites, api_client):
    (_, first), (_, second) = two_sites
    drop_in = Path(naming.root(first)) / "shared" / "object-cache.php"
    assert first.redis_cache_enabled and drop_in.is_file()
    assert os.readlink(Path(naming.root(first)) / "current" / "wp-content" / "object-cache.php") == \
        "../../../shared/object-cache.php"
    assert oct(drop_in.stat().st_mode & 0o777) == "0o640" and drop_in.stat().st_uid == 0

    # WordPress runs on the drop-in; a new request finds its options in Redis.
    http_get(first.preview_url, f"/?warm={uuid.uuid4().hex}")
    http_get(second.preview_url, f"/?warm={uuid.uuid4().hex}")
    state = php_probe(first, OBJECT_CACHE_STATE)
    assert state == {"class": "Pressluft_Object_Cache", "external": True, "connected": True,
                     "alloptions_from_redis": True}
    first_keys, second_keys = keys_of(first), keys_of(second)
    assert any(key.endswith(":options:alloptions") for key in first_keys), first_keys
    assert second_keys
    # The environment's own user could not have written anywhere else (the ACL), and it did not try:
    # the drop-in's keys all have the form <prefix><generation>:<group>:<key>, beside <prefix>generation
    # (wp_cache_flush, which WordPress's installer calls, starts a new generation).
    prefix = naming.redis_key_prefix(first)
    assert all(key == f"{prefix}generation" or key[len(prefix):].count(":") >= 2 for key in first_keys), first_keys

    run(api_client, "post", f"/api/environments/{first.id}/cache/purge")
    assert keys_of(first) == []
    assert set(second_keys) <= set(keys_of(second))  # the other environment's keys stay

    run(api_client, "patch", f"/api/environments/{first.id}/cache", {"redis_cache_enabled": False})
    first.refresh_from_db()
    assert (first.fastcgi_cache_enabled, first.redis_cache_enabled) == (True, False)
    assert not drop_in.exists()
    state = php_probe(first, OBJECT_CACHE_STATE)
    assert state["class"] == "WP_Object_Cache" and state["external"] is False
    http_get(first.preview_url, f"/?cold={uuid.uuid4().hex}")
    assert keys_of(first) == []
    assert http_get(first.preview_url, f"/?cold={uuid.uuid4().hex}")[0] == 200

    run(api_client, "patch", f"/api/environments/{first.id}/cache", {"redis_cache_enabled": True})
    assert drop_in.is_file()
    assert php_probe(first, OBJECT_CACHE_STATE)["class"] == "Pressluft_Object_Cache"


def test_cache_requests_are_checked(two_sites, api_client):
    (_, environment), _ = two_sites
    url = f"/api/environments/{environment.id}/cache"
    for body in ({}, {"fastcgi_cache_enabled": "no"}, {"other": True}, {"redis_cache_enabled": None}):
        response = api_client.patch(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["code"] == "bad_request"
    missing = uuid.uuid4()
    assert api_client.patch(f"/api/environments/{missing}/cache", {"redis_cache_enabled": True},
                            format="json").status_code == 404
    assert api_client.post(f"/api/environments/{missing}/cache/purge").status_code == 404
    environment.status = "failed"
    environment.save()
    response = api_client.post(f"{url}/purge")
    assert response.status_code == 409 and response.json()["code"] == "environment_not_active"
    response = api_client.patch(url, {"fastcgi_cache_enabled": False}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "environment_not_active"
    environment.status = "active"
    environment.save()


@pytest.fixture
def one_site(api_client, local_node):
    site, environment = create_site(api_client, "Admin Alley", "adminalley")
    yield environment
    if Site.objects.filter(pk=site.pk).exists():
        runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_admin_caching_page_purge_action_and_command(one_site, api_client):
    from django.core.management import call_command
    from django.test import Client

    from apps.accounts.factories import UserFactory
    from apps.environments.models import Environment
    from apps.jobs.models import Job
    from tests.test_admin import run_action, url

    environment = one_site
    admin = Client()
    admin.force_login(UserFactory(email="root@example.test", is_superuser=True))
    page_url = url(Environment, "caching", environment.pk)
    page = admin.get(page_url)
    assert page.status_code == 200 and 'name="fastcgi_cache_enabled"' in page.content.decode()

    # Page cache stays on, object cache off (an unticked box).
    response = admin.post(page_url, {"fastcgi_cache_enabled": "on"})
    job = Job.objects.get(job_type="env_cache_toggle")
    assert response.status_code == 302 and response["Location"] == url(job)
    assert runner.run_job(str(job.pk)) == "succeeded", job_log(job.pk)
    environment.refresh_from_db()
    assert (environment.fastcgi_cache_enabled, environment.redis_cache_enabled) == (True, False)
    assert not (Path(naming.root(environment)) / "shared" / "object-cache.php").exists()

    page = f"/?admin-purge={uuid.uuid4().hex}"
    request(environment, path=page)
    assert request(environment, path=page)[1] == "HIT"
    run_action(admin, Environment, "purge_caches", [environment])
    job = Job.objects.get(job_type="cache_purge")
    assert runner.run_job(str(job.pk)) == "succeeded", job_log(job.pk)
    assert request(environment, path=page)[1] == "MISS"
    assert AuditEntry.objects.filter(action="environment.cache_purge", resource_id=str(environment.pk)).exists()

    call_command("cache_environment", environment.site.slug, environment.slug, "--object", "on", "--page", "off",
                 "--wait")
    environment.refresh_from_db()
    assert (environment.fastcgi_cache_enabled, environment.redis_cache_enabled) == (False, True)
    assert request(environment, path=page) == (200, None)
    call_command("cache_environment", environment.site.slug, environment.slug, "--purge", "--wait")
    assert AuditEntry.objects.filter(action="environment.cache_purge", actor="manage.py cache_environment").exists()


SERVER_VARS_PLUGIN = r"""<?php
// Planted by the test: what PHP-FPM was told about the request, then stop.
if (isset($_GET['pressluft-server-vars'])) {
    $names = ['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PHP_SELF', 'DOCUMENT_URI', 'DOCUMENT_ROOT', 'REQUEST_URI',
              'QUERY_STRING', 'REQUEST_METHOD'];
    echo 'ANSWER:' . json_encode(array_intersect_key($_SERVER, array_flip($names)));
    exit;
}
"""


def test_the_home_page_has_a_direct_path_with_the_same_rules(one_site, api_client):
    """`location = /` sends the home page to PHP-FPM without try_files and the
    internal redirect: WordPress sees what /index.php would show it, and the
    cache rules, purge and the deny list are those of every other page."""
    environment = one_site
    current = Path(naming.root(environment)) / "current"
    mu_plugins = current / "wp-content" / "mu-plugins"
    made_dir = not mu_plugins.exists()
    mu_plugins.mkdir(exist_ok=True)
    plugin = mu_plugins / "pressluft-test-server-vars.php"
    plugin.write_text(SERVER_VARS_PLUGIN)
    try:
        def server_vars(path):
            status, headers, body, _ = http_get(environment.preview_url, path)
            assert status == 200 and "ANSWER:" in body, (path, status, body[:500])
            return json.loads(body.split("ANSWER:", 1)[1]), headers.get(CACHE_HEADER)

        token = uuid.uuid4().hex
        home, cache = server_vars(f"/?pressluft-server-vars={token}")
        assert cache == "MISS"
        assert server_vars(f"/?pressluft-server-vars={token}")[1] == "HIT"
        script = os.path.realpath(current) + "/index.php"
        assert home == {"SCRIPT_NAME": "/index.php", "SCRIPT_FILENAME": script, "PHP_SELF": "/index.php",
                        "DOCUMENT_URI": "/index.php", "DOCUMENT_ROOT": os.path.realpath(current),
                        "REQUEST_URI": f"/?pressluft-server-vars={token}",
                        "QUERY_STRING": f"pressluft-server-vars={token}", "REQUEST_METHOD": "GET"}
        # The same as by the other ways to index.php: named, and a permalink through try_files.
        for path in (f"/index.php?pressluft-server-vars={token}", f"/a-permalink/?pressluft-server-vars={token}"):
            other, cache = server_vars(path)
            assert cache == "MISS"
            assert server_vars(path)[1] == "HIT"
            assert {**other, "REQUEST_URI": home["REQUEST_URI"]} == home, path
    finally:
        plugin.unlink()
        if made_dir:
            mu_plugins.rmdir()

    # The bare "/" (the page the bench measures): cached, bypassed by rule, purged at once.
    request(environment, path="/")
    assert request(environment, path="/") == (200, "HIT")
    for headers in ({"Cookie": "wordpress_logged_in_abc=someone"}, {"Cookie": "wp-postpass_abc=x"},
                    {"Cookie": "woocommerce_items_in_cart=1"}):
        assert request(environment, path="/", headers=headers) == (200, "BYPASS"), headers
    assert request(environment, "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, "a=1")[1] == \
        "BYPASS"
    assert request(environment, path="/?rest_route=/")[1] == "BYPASS"
    assert request(environment, path="/") == (200, "HIT")
    run(api_client, "post", f"/api/environments/{environment.id}/cache/purge")
    assert request(environment, path="/") == (200, "MISS")
    assert request(environment, path="/") == (200, "HIT")

    # The deny list still answers before any PHP location, on the site's own block.
    for path in ("/.env", "/.git/config", "/wp-config.php", "/wp-config.php.bak", "/index.php~", "/dump.sql",
                 "/wp-content/uploads/shell.php", "/wp-content/uploads/2024/x.phtml"):
        assert request(environment, path=path)[0] == 403, path
    assert request(environment, path="/.well-known/pressluft-none")[0] != 403  # left open for ACME
