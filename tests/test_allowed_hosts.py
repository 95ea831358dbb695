"""ALLOWED_HOSTS: derived from PRESSLUFT_LISTEN and the control plane domain
instead of "*", so a request naming another host is refused (Host header
attacks: poisoned absolute URLs such as the API's Link header)."""

import os
import subprocess
import sys

import pytest
from django.http.request import validate_host
from django.test import Client, RequestFactory

from apps.core.middleware import PanelProxyMiddleware
from apps.core.models import PanelSettings
from pressluft.allowed_hosts import (
    PanelAllowedHosts,
    control_plane_domain,
    derived_allowed_hosts,
    listen_host,
    machine_addresses,
)

LOOPBACK = ["localhost", "127.0.0.1", "[::1]"]


def no_addresses():
    return []


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1:8000", LOOPBACK),
    ("8000", LOOPBACK),
    ("10.0.0.5:8000", [*LOOPBACK, "10.0.0.5"]),
    ("Panel.Example.COM:443", [*LOOPBACK, "panel.example.com"]),
    ("[2001:db8::7]:8000", [*LOOPBACK, "[2001:db8::7]"]),
    ("[::1]:8000", LOOPBACK),
    ("0.0.0.0:8000", [*LOOPBACK, "192.0.2.10", "[2001:db8::10]"]),
    ("[::]:8000", [*LOOPBACK, "192.0.2.10", "[2001:db8::10]"]),
])
def test_derived_allowed_hosts(listen, expected):
    # On a wildcard address the panel is reached at this machine's own addresses.
    assert derived_allowed_hosts(listen, lambda: ["192.0.2.10", "2001:db8::10", "127.0.0.1"]) == expected


def test_listen_host_reads_what_scripts_run_accepts():
    assert [listen_host(v) for v in ("127.0.0.1:8000", "8000", "[::]:80", "0.0.0.0:8000", "panel.local:1")] == [
        "127.0.0.1", "127.0.0.1", "::", "0.0.0.0", "panel.local"]


def test_machine_addresses_are_this_machines():
    found = machine_addresses()
    assert "127.0.0.1" in found
    assert not any(address.startswith("fe80:") for address in found)


@pytest.mark.django_db
def test_the_control_plane_domain_joins_the_allowed_hosts():
    hosts = PanelAllowedHosts(derived_allowed_hosts("127.0.0.1:8000", no_addresses))
    control_plane_domain.forget()
    assert not validate_host("panel.example.com", hosts)
    settings_row = PanelSettings.load()
    settings_row.control_plane_domain = "panel.example.com"
    settings_row.save()
    control_plane_domain.forget()
    assert validate_host("panel.example.com", hosts)
    assert validate_host("127.0.0.1", hosts)
    assert not validate_host("evil.example", hosts)
    assert not validate_host("panel.example.com.evil.example", hosts)
    control_plane_domain.forget()


@pytest.mark.django_db
def test_a_request_for_another_host_is_refused(settings, api_client):
    settings.ALLOWED_HOSTS = PanelAllowedHosts(derived_allowed_hosts("127.0.0.1:8000", no_addresses))
    control_plane_domain.forget()
    assert api_client.get("/api/sites", HTTP_HOST="127.0.0.1:8000").status_code == 200
    response = api_client.get("/api/sites", HTTP_HOST="evil.example")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert Client().get("/admin/login/", HTTP_HOST="evil.example").status_code == 400

    PanelSettings.objects.update_or_create(pk=1, defaults={"control_plane_domain": "panel.example.com"})
    control_plane_domain.forget()
    response = api_client.get("/api/sites?limit=1", HTTP_HOST="panel.example.com")
    assert response.status_code == 200
    control_plane_domain.forget()


def settings_allowed_hosts(**env) -> str:
    """ALLOWED_HOSTS as a fresh process computes it from its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in {"PRESSLUFT_ALLOWED_HOSTS", "PRESSLUFT_LISTEN"}}
    clean["DJANGO_SETTINGS_MODULE"] = "pressluft.settings"
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(list(settings.ALLOWED_HOSTS))"],
        env={**clean, **env}, capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


def test_settings_derive_allowed_hosts_unless_they_are_configured():
    assert settings_allowed_hosts() == str(LOOPBACK)
    assert settings_allowed_hosts(PRESSLUFT_LISTEN="10.0.0.5:8000") == str([*LOOPBACK, "10.0.0.5"])
    assert settings_allowed_hosts(PRESSLUFT_ALLOWED_HOSTS="panel.example.com, .example.org") == str(
        ["panel.example.com", ".example.org"])
    assert settings_allowed_hosts(PRESSLUFT_ALLOWED_HOSTS="*") == str(["*"])


@pytest.mark.django_db
@pytest.mark.parametrize(("peer", "host", "token_for", "trusted"), [
    ("127.0.0.1", "panel.example.com", "panel.example.com", True),
    ("::1", "panel.example.com", "panel.example.com", True),
    # A site's PHP on this machine posing as the proxy, without the token (or with another domain's):
    ("127.0.0.1", "panel.example.com", None, False),
    ("127.0.0.1", "panel.example.com", "other.example.com", False),
    # The right token from anywhere but loopback, or for another Host:
    ("192.0.2.7", "panel.example.com", "panel.example.com", False),
    ("127.0.0.1", "127.0.0.1", "panel.example.com", False),
])
def test_only_the_panels_own_proxy_is_believed(settings, api_client, peer, host, token_for, trusted):
    """What the panel's Nginx forwards (apps/domains/panel_https.py) came over
    HTTPS from X-Real-IP; from anyone else those headers change nothing."""
    from apps.audit.models import AuditEntry
    from apps.core.panel_proxy import proxy_token

    settings.ALLOWED_HOSTS = PanelAllowedHosts(derived_allowed_hosts("127.0.0.1:8000", no_addresses))
    PanelSettings.objects.update_or_create(pk=1, defaults={"control_plane_domain": "panel.example.com"})
    control_plane_domain.forget()
    headers = {"HTTP_HOST": host, "REMOTE_ADDR": peer, "HTTP_X_REAL_IP": "203.0.113.9",
               "HTTP_X_FORWARDED_PROTO": "https"}
    headers["HTTP_X_PRESSLUFT_PROXY"] = proxy_token(token_for) if token_for else "0" * 64
    response = api_client.get("/api/sites?limit=1&offset=0", **headers)
    assert response.status_code == 200
    # The audit log's client address: the forwarded one only from the proxy.
    api_client.patch("/api/settings", {"preview_domain": "preview.example.test"}, format="json", **headers)
    entry = AuditEntry.objects.get(action="panelsettings.update")
    assert entry.client_address == ("203.0.113.9" if trusted else peer)
    seen = {}

    def view(request):
        seen.update(secure=request.is_secure(), meta=dict(request.META))
        return None

    PanelProxyMiddleware(view)(RequestFactory().get("/", **headers))
    assert seen["secure"] is trusted
    assert "HTTP_X_PRESSLUFT_PROXY" not in seen["meta"]  # never passed on
    control_plane_domain.forget()
