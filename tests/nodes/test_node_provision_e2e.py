"""End to end on the real local node: this machine, reached over SSH on
loopback, registered and provisioned through the API, its services checked
from the outside (Nginx over HTTP, Redis and MariaDB with their clients)."""

import grp
import json
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from apps.jobs.models import Job
from apps.nodes.models import Node
from tests.nodes.fixtures import provision
from tests.nodes.support import http_get, job_log, new_host_key

pytestmark = pytest.mark.django_db(transaction=True)

TEST_SITE = Path("/etc/nginx/sites-enabled/pressluft-test-node-headers.conf")


def output(*argv: str, env: dict | None = None) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, env=env).stdout


REDIS_ADMIN_SECRET = Path("/etc/pressluft/redis-admin.secret")
REDIS_ACL_FILE = Path("/etc/pressluft/redis-users.acl")


def redis_admin(*args: str) -> str:
    """redis-cli as the node programs' administrator (its password in the environment, as they pass it)."""
    secret = REDIS_ADMIN_SECRET.read_text().strip()
    return output("redis-cli", "--user", "pressluft", *args, env=dict(os.environ, REDISCLI_AUTH=secret))


def listeners(port: int) -> set[str]:
    lines = output("ss", "-Hltn", f"sport = :{port}").splitlines()
    return {line.split()[3].rsplit(":", 1)[0] for line in lines if line.strip()}


def test_provisioning_the_local_node(api_client, local_node):
    detail = api_client.get(f"/api/nodes/{local_node.id}").json()
    assert detail["status"] == "active", detail
    assert detail["status_reason"] == ""
    assert detail["is_local"] is True
    assert detail["host_key_fingerprint"].startswith("SHA256:")

    job = Job.objects.filter(node=local_node, job_type="node_provision").get()
    messages = [line.message for line in job.log_lines.order_by("seq")]
    assert "packages" in messages and "services" in messages  # node-side steps stream into the log
    assert job.result["services"]["nginx"] is True

    # An unknown hostname: the connection is closed without any answer (444).
    assert http_get("no-such-site.pressluft.test") is None
    # Except for an ACME token certbot put in root's challenge directory (a
    # domain gets its certificate before its server block exists); nothing else
    # is served that way, not a missing token, not a path climbing out of it.
    challenges = Path("/var/lib/pressluft/acme/.well-known/acme-challenge")
    challenges.mkdir(parents=True, exist_ok=True)
    token = challenges / f"provision-test-{os.urandom(6).hex()}"
    token.write_text("token\n")
    try:
        assert http_get("no-such-site.pressluft.test", f"/.well-known/acme-challenge/{token.name}")[0] == 200
        for path in ("/.well-known/acme-challenge/missing-token", "/.well-known/acme-challenge/",
                     f"/.well-known/acme-challenge/{token.name}.txt", "/.env", "/index.php", "/wp-login.php"):
            assert http_get("no-such-site.pressluft.test", path) is None, path
        # Climbing above the root is refused by Nginx itself (400), before any server block.
        for path in (f"/.well-known/acme-challenge/{token.name}/../../../../etc/hostname",
                     "/.well-known/acme-challenge/..%2f..%2f..%2fetc%2fhostname"):
            answer = http_get("no-such-site.pressluft.test", path)
            assert answer is None or answer[0] == 400, path
    finally:
        token.unlink()

    # Every listener provisioning started stays on loopback here.
    for port in (80, 3306, 6379):
        assert listeners(port) and listeners(port) <= {"127.0.0.1", "[::1]"}, (port, listeners(port))

    # Redis: a cache without persistence, a tenth of the memory, LRU eviction.
    assert redis_admin("CONFIG", "GET", "maxmemory-policy").split() == ["maxmemory-policy", "allkeys-lru"]
    assert redis_admin("CONFIG", "GET", "save").split() == ["save"]
    assert redis_admin("CONFIG", "GET", "appendonly").split() == ["appendonly", "no"]
    maxmemory = int(redis_admin("CONFIG", "GET", "maxmemory").split()[1])
    total = local_node.health["memory"]["total_bytes"]
    assert 0.09 * total < maxmemory <= 0.1 * total
    # Nobody without a password; users from Pressluft's ACL file, whose secrets only root reads.
    assert output("redis-cli", "PING", env={"PATH": os.environ["PATH"]}).startswith("NOAUTH")
    assert redis_admin("CONFIG", "GET", "aclfile").split() == ["aclfile", str(REDIS_ACL_FILE)]
    assert redis_admin("ACL", "GETUSER", "default").splitlines()[1] == "off"
    for path, mode, group in ((REDIS_ADMIN_SECRET, 0o600, "root"), (REDIS_ACL_FILE, 0o640, "redis")):
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, grp.getgrgid(info.st_gid).gr_name) == (mode, 0, group), path

    assert output("mariadb", "-N", "-e", "SELECT @@bind_address, @@local_infile").split() == ["127.0.0.1", "0"]

    # PHP-FPM as its workers see it.
    info = output("php-fpm8.2", "-i")
    assert "expose_php => Off" in info
    disabled = next(line for line in info.splitlines() if line.startswith("disable_functions =>"))
    for function in ("exec", "passthru", "shell_exec", "system", "proc_open", "popen", "pcntl_exec", "putenv"):
        assert function in disabled.split("=>")[1].strip().split(",")

    # The FastCGI cache zone and the header snippets are in the running config.
    config = output("nginx", "-T")
    assert "keys_zone=pressluft:" in config and "/var/cache/nginx/pressluft" in config
    assert 'fastcgi_cache_key "$scheme$request_method$host$request_uri"' in config
    assert "server_tokens off;" in config
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Permissions-Policy"):
        assert f"add_header {header} " in config
    assert not Path("/etc/nginx/sites-enabled/default").exists()

    # The firewall rules were written for inspection, not loaded.
    rules = Path("/etc/pressluft/firewall.nft").read_text()
    assert "policy drop" in rules and 'iif "lo" accept' in rules
    ports = rules.split("tcp dport {", 1)[1].split("}", 1)[0]
    assert {"80", "443", str(local_node.ssh_port)} <= {port.strip() for port in ports.split(",")}
    assert subprocess.run(["nft", "list", "table", "inet", "pressluft"], capture_output=True).returncode != 0
    assert local_node.health["firewall"]["applied"] is False
    subprocess.run(["nft", "-c", "-f", "/etc/pressluft/firewall.nft"], check=True)  # -c: check only

    # What site programs on the node read about its shared setup.
    node_file = json.loads(Path("/etc/pressluft/node.json").read_text())
    assert node_file["listen_address"] == "127.0.0.1"
    assert node_file["fastcgi_cache_zone"] == "pressluft"

    # Fail2Ban may not run in every container; the result says which it is.
    assert set(local_node.health["fail2ban"]) >= {"running"}
    assert Path("/etc/fail2ban/jail.d/pressluft.conf").exists()


def test_security_headers_and_waf_are_served(local_node):
    # A server block like a site's, using the snippets provisioning installed.
    TEST_SITE.write_text(
        "server {\n"
        "    listen 127.0.0.1:80;\n"
        "    server_name headers.pressluft.test;\n"
        "    include /etc/nginx/snippets/pressluft-waf.conf;\n"
        "    location / { return 200 'ok'; }\n"
        "}\n"
    )
    try:
        subprocess.run(["nginx", "-s", "reload"], check=True)
        status, headers = _wait_for_status("headers.pressluft.test", "/", 200)
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in headers["permissions-policy"]
        assert headers["server"] == "nginx"  # no version
        for path in ("/.git/config", "/.env", "/wp-config.php", "/wp-config.php.bak", "/backup.sql",
                     "/wp-content/uploads/2024/01/shell.php"):
            # Retried like above: old workers may still close connections after the reload.
            status, headers = _wait_for_status("headers.pressluft.test", path, 403)
            assert headers["x-content-type-options"] == "nosniff"  # "always": on errors too
        assert _wait_for_status("headers.pressluft.test", "/.well-known/acme-challenge/token", 200)[0] == 200
    finally:
        TEST_SITE.unlink(missing_ok=True)
        subprocess.run(["nginx", "-s", "reload"], check=True)


def _wait_for_status(host, path, expected, tries=50):
    for _ in range(tries):
        answer = http_get(host, path)
        if answer is not None and answer[0] == expected:
            return answer
        time.sleep(0.1)  # the reload replaces the workers in the background
    raise AssertionError(f"{host}{path} never answered {expected}: {answer}")


def test_a_second_provision_changes_nothing(api_client, local_node):
    job_id = provision(api_client, local_node.id)
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded", job_log(job_id)
    assert job.result["changed"] == []
    assert any("no changes" in line.message for line in job.log_lines.all())
    assert Node.objects.get(pk=local_node.id).status == "active"


def test_health_endpoint_reports_services(api_client, local_node):
    before = api_client.get(f"/api/nodes/{local_node.id}/health").json()
    assert before["health"]["services"]["nginx"] is True

    response = api_client.get(f"/api/nodes/{local_node.id}/health?refresh=1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checked_at"] > before["checked_at"]
    health = body["health"]
    assert health["services"] == {"nginx": True, "php-fpm": True, "mariadb": True, "redis": True,
                                  "fail2ban": health["services"]["fail2ban"]}
    assert health["versions"]["nginx"] and health["versions"]["php"].startswith("8.2")
    assert health["versions"]["mariadb"] and health["versions"]["redis"] and health["versions"]["os"]
    assert 0 < health["disk"]["free_bytes"] <= health["disk"]["total_bytes"]
    assert 0 < health["memory"]["available_bytes"] <= health["memory"]["total_bytes"]
    assert "1m" in health["load"]
    assert "firewall" in health  # kept from provisioning


def test_scheduler_refreshes_only_old_health_reports(local_node):
    from datetime import timedelta

    from django.utils import timezone

    from apps.nodes.choices import NodeStatus
    from apps.nodes.factories import NodeFactory
    from apps.nodes.health import refresh_stale

    assert refresh_stale() == 0  # just provisioned: its report is fresh
    day_old = timezone.now() - timedelta(days=1)
    Node.objects.filter(pk=local_node.pk).update(health_checked_at=day_old)
    assert refresh_stale() == 1
    assert Node.objects.get(pk=local_node.pk).health_checked_at > day_old

    # A node that does not answer is marked unreachable; the others go on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gone = NodeFactory(name="gone", ssh_port=closed_port, health_checked_at=None, host_key=local_node.host_key)
    Node.objects.filter(pk=local_node.pk).update(health_checked_at=day_old)
    assert refresh_stale() == 1
    assert Node.objects.get(pk=gone.pk).status == NodeStatus.UNREACHABLE


def test_a_stopped_sshd_gives_a_retryable_unreachable_error(api_client, panel_key, extra_sshd):
    sshd = extra_sshd()
    sshd.authorize(panel_key)
    node_id = _register(api_client, "stopped", sshd.port)
    sshd.stop()

    job_id = provision(api_client, node_id)
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_code) == ("queued", "node_unreachable"), job_log(job_id)  # back in the queue
    assert job.run_after is not None and job.attempt_count == 1
    node = Node.objects.get(pk=node_id)
    assert node.status == "unreachable"
    assert f"127.0.0.1:{sshd.port}" in node.status_reason

    response = api_client.get(f"/api/nodes/{node_id}/health?refresh=1")
    assert response.status_code == 502
    assert response.json()["code"] == "node_unreachable"

    # Back again: reachable, but still not provisioned (the retry will do that).
    sshd.start()
    response = api_client.get(f"/api/nodes/{node_id}/health?refresh=1")
    assert response.status_code == 200, response.content
    node.refresh_from_db()
    assert (node.status, node.status_reason) == ("provisioning", "")


def test_a_changed_host_key_is_refused_for_good(api_client, panel_key, extra_sshd):
    sshd = extra_sshd()
    sshd.authorize(panel_key)
    node_id = _register(api_client, "rekeyed", sshd.port)
    sshd.stop()
    sshd.host_key = new_host_key(sshd.host_key.with_name("host_ed25519_new"))
    sshd.write_config()
    sshd.start()

    job_id = provision(api_client, node_id)
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_code) == ("failed", "host_key_mismatch"), job_log(job_id)
    assert "host key" in job.error_message and "SHA256:" in job.error_message
    node = Node.objects.get(pk=node_id)
    assert node.status_reason.startswith("host_key_mismatch")

    response = api_client.get(f"/api/nodes/{node_id}/health?refresh=1")
    assert (response.status_code, response.json()["code"]) == (502, "host_key_mismatch")


def test_registering_without_the_panel_key_says_which_key_to_install(api_client, panel_key, extra_sshd):
    sshd = extra_sshd()  # its authorized_keys file is empty
    response = api_client.post(
        "/api/nodes",
        {"name": "unauthorized", "hostname": "127.0.0.1", "ssh_port": sshd.port, "public_ipv4": "127.0.0.1"},
        format="json",
    )
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "ssh_auth_failed"
    assert body["details"]["public_key"] == panel_key
    assert not Node.objects.exists()


def test_nodes_api_lists_and_shows_the_public_key(api_client, panel_key, node_sshd):
    assert api_client.get("/api/nodes/public-key").json() == {"public_key": panel_key}
    node_id = _register(api_client, "listed", node_sshd.port)
    listed = api_client.get("/api/nodes").json()
    assert [node["id"] for node in listed] == [node_id]
    assert "host_key" not in listed[0]
    assert api_client.get("/api/nodes/00000000-0000-0000-0000-000000000000").status_code == 404
    bad = api_client.post(f"/api/nodes/{node_id}/provision", {"apply_firewall": "maybe"}, format="json")
    assert bad.status_code == 400
    bad = api_client.post(f"/api/nodes/{node_id}/provision", {"listen_address": "0.0.0.0; rm -rf /"}, format="json")
    assert bad.status_code == 400


def test_a_node_is_provisioned_by_one_job_at_a_time(api_client, panel_key, node_sshd):
    node_id = _register(api_client, "busy", node_sshd.port)
    first = api_client.post(f"/api/nodes/{node_id}/provision", {}, format="json")
    assert first.status_code == 202
    second = api_client.post(f"/api/nodes/{node_id}/provision", {}, format="json")
    assert (second.status_code, second.json()["code"]) == (409, "conflict")


def _register(api_client, name, port) -> str:
    response = api_client.post(
        "/api/nodes",
        {"name": name, "hostname": "127.0.0.1", "ssh_port": port, "public_ipv4": "127.0.0.1"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]

