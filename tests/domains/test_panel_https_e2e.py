"""The panel itself over HTTPS on its control plane domain, end to end on the
real local node: the setting changed through the API queues panel_https,
which writes the panel's server block, gets a certificate from pebble
(HTTP-01, resolved by dnsmasq: tests/domains/conftest.py) and proxies to a
real gunicorn serving the panel on a loopback port. Clearing the setting
removes the block and the certificate."""

import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings

from apps.accounts.services import create_api_token
from apps.jobs import runner
from apps.jobs.models import Job
from tests.domains.servers import ELSEWHERE, POINTED
from tests.jobs.support import database_url_of_tests
from tests.sites.test_site_lifecycle_e2e import job_log

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(django_settings.BASE_DIR)
LIVE = Path("/etc/letsencrypt/live")
VHOST = Path("/etc/nginx/sites-enabled/pressluft-panel.conf")  # apps/domains/remote/panel_https.py
STATE = Path("/var/lib/pressluft/panel-https.json")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """The panel as scripts/run serves it (gunicorn on loopback), on the test database."""

    def __init__(self, log_path: Path):
        self.port = _free_port()
        self.log_path = log_path
        self.process = None

    def start(self):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "pressluft.settings_test", "DATABASE_URL": database_url_of_tests(),
               "PRESSLUFT_SECRET_KEY": django_settings.SECRET_KEY, "PRESSLUFT_DATA_DIR": str(django_settings.DATA_DIR),
               "PRESSLUFT_LISTEN": f"127.0.0.1:{self.port}", "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                 "--timeout", "60", "pressluft.wsgi:application"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/nodes/public-key", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the panel did not start:\n" + self.log_path.read_text(errors="replace"))
                time.sleep(0.2)

    def stop(self):
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def gunicorn(tmp_path, settings):
    panel = Gunicorn(tmp_path / "gunicorn.log")
    # Where panel_https points Nginx: the panel's PRESSLUFT_LISTEN.
    settings.LISTEN = f"127.0.0.1:{panel.port}"
    yield panel
    panel.stop()


def https(hostname, root_pem, method="GET", path="/", headers=None, body=None):
    """A request to 127.0.0.1:443 with SNI and Host ``hostname``, the
    certificate verified against pebble's root."""
    context = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", 443), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            connection = http.client.HTTPConnection(hostname)
            connection.sock = tls
            connection.request(method, path, body=body, headers={"Host": hostname, **(headers or {})})
            answer = connection.getresponse()
            return answer.status, answer.headers, answer.read()


def http_get(hostname, path="/"):
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    connection.request("GET", path, headers={"Host": hostname})
    answer = connection.getresponse()
    return answer.status, dict(answer.getheaders())


def cookies(headers) -> dict[str, str]:
    """name -> the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in headers.get_all("Set-Cookie") or []}


def change_domain(api_client, value) -> tuple[dict, Job | None]:
    response = api_client.patch("/api/settings", {"control_plane_domain": value}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    job_id = body["control_plane_https"]["job_id"]
    if job_id is None:
        return body, None
    runner.run_job(job_id)
    return body, Job.objects.get(pk=job_id)


def forget_panel_domain_of_earlier_runs() -> None:
    """A run interrupted before its cleanup leaves the panel's block naming a
    certificate of a pebble that is gone (which the renewal test forgets):
    the block goes too, or no Nginx configuration would pass its test."""
    if not VHOST.exists() and not STATE.exists():
        return
    hostname = STATE.read_text() if STATE.exists() else VHOST.read_text()
    if f".{POINTED}" not in hostname and f".{ELSEWHERE}" not in hostname:
        return  # not a test's
    VHOST.unlink(missing_ok=True)
    STATE.unlink(missing_ok=True)
    subprocess.run(["/usr/sbin/nginx", "-s", "reload"], capture_output=True, check=False)


@pytest.fixture
def clean_panel_domain(api_client):
    forget_panel_domain_of_earlier_runs()
    yield
    # Whatever happened, the node serves no panel domain of this test afterwards.
    if VHOST.exists() or STATE.exists():
        change_domain(api_client, "")


def test_the_panel_is_served_over_https_on_its_domain(api_client, local_node, acme, gunicorn, staff_user,
                                                      clean_panel_domain):
    tag = uuid.uuid4().hex[:6]
    hostname = f"panel-{tag}.{POINTED}"
    root_pem = acme.root_pem()

    # Upper case and a trailing dot are the same name; the job is queued with the change.
    body, job = change_domain(api_client, f"Panel-{tag}.Pointed.TEST.")
    assert body["control_plane_domain"] == hostname
    assert body["control_plane_https"]["state"] == "pending"
    assert job.job_type == "panel_https" and job.node_id == local_node.pk
    assert job.status == "succeeded", job_log(job.pk)
    assert job.result["hostname"] == hostname and job.result["expires_at"]
    shown = api_client.get("/api/settings").json()["control_plane_https"]
    assert (shown["state"], shown["hostname"], shown["expires_at"]) == ("active", hostname, job.result["expires_at"])
    # The block holds the proxy token: root's alone.
    assert VHOST.stat().st_mode & 0o777 == 0o600
    assert (LIVE / hostname / "fullchain.pem").exists()

    gunicorn.start()
    # The login page over HTTPS, the certificate chaining to pebble's root; cookies Secure.
    status, headers, page = https(hostname, root_pem, path="/admin/login/")
    assert status == 200 and b'name="password"' in page, page[:500]
    csrf_cookie = cookies(headers)[django_settings.CSRF_COOKIE_NAME]
    assert "Secure" in csrf_cookie
    # Relative redirects stay on the domain; absolute URLs the panel builds are https on it.
    status, headers, _ = https(hostname, root_pem, path="/admin/")
    assert status == 302 and headers["Location"].startswith("/admin/login/")
    token = create_api_token(staff_user, "panel over https").plaintext
    status, headers, listed = https(hostname, root_pem, path="/api/jobs?limit=1",
                                    headers={"Authorization": f"Bearer {token}"})
    assert status == 200, listed
    assert headers["Link"].startswith(f"<https://{hostname}/api/jobs?"), headers["Link"]

    # A browser's login: CSRF's origin check passes on the HTTPS origin, the session cookie is Secure.
    csrf = csrf_cookie.split(";", 1)[0].split("=", 1)[1]
    form = urlencode({"username": staff_user.email, "password": "correct horse battery", "next": "/admin/",
                      "csrfmiddlewaretoken": re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
                      .group(1).decode()})
    status, headers, answer = https(hostname, root_pem, "POST", "/admin/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"{django_settings.CSRF_COOKIE_NAME}={csrf}",
        "Origin": f"https://{hostname}", "Referer": f"https://{hostname}/admin/login/"})
    assert status == 302 and headers["Location"] == "/admin/", answer[:500]
    assert "Secure" in cookies(headers)[django_settings.SESSION_COOKIE_NAME]

    # HTTP answers 301 to HTTPS; the challenge path stays on HTTP.
    status, headers = http_get(hostname, "/admin/?x=1")
    assert status == 301 and headers["Location"] == f"https://{hostname}/admin/?x=1"

    # Cleared: the block and the certificate go, nothing answers for the name.
    body, job = change_domain(api_client, "")
    assert job.status == "succeeded", job_log(job.pk)
    assert job.result["deleted"] == [hostname]
    assert api_client.get("/api/settings").json()["control_plane_https"]["state"] == "off"
    assert not VHOST.exists() and not (LIVE / hostname).exists()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https(hostname, root_pem, path="/admin/login/")
    with pytest.raises(http.client.RemoteDisconnected):
        http_get(hostname)


def test_a_domain_pointing_elsewhere_is_refused_and_nothing_written(api_client, local_node, acme,
                                                                     clean_panel_domain):
    hostname = f"panel-{uuid.uuid4().hex[:6]}.{ELSEWHERE}"
    assert not VHOST.exists()
    body, job = change_domain(api_client, hostname)
    assert job.status == "failed" and job.error_code == "dns_not_pointing", job_log(job.pk)
    assert f"A {hostname} → 127.0.0.1" in job.error_message
    shown = api_client.get("/api/settings").json()["control_plane_https"]
    assert shown["state"] == "failed" and hostname in shown["error"]
    assert not VHOST.exists() and not (LIVE / hostname).exists()
