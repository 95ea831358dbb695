"""The preview domain end to end on the real local node: its settings given
through the API, the wildcard certificate issued by DNS-01 — certbot's
rfc2136 plugin updating a real authoritative DNS server (knotd) with a TSIG
key, a real ACME server (pebble) checking the TXT record there
(tests/domains/conftest.py) —, then a new site reached at
https://{id8}.<preview domain> with that certificate. The TSIG secret is in
no API answer, job log or audit entry."""

import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from apps.audit.models import AuditEntry
from apps.core.models import PanelSettings
from apps.domains import preview
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job, JobLogLine
from tests.domains.servers import PREVIEW_ZONE
from tests.domains.test_domains_e2e import http_get, https_get
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = Path("/etc/letsencrypt/live")
CREDENTIALS = Path("/etc/pressluft/dns01/rfc2136.ini")


def forget_wildcards_of_earlier_runs(keep: str = ""):
    """Wildcard certificates an interrupted earlier run left (their pebble and
    knotd are gone): a renewal of every certificate would fail on them."""
    names = [path.name for path in LIVE.iterdir() if path.is_dir()] if LIVE.is_dir() else []
    for name in names:
        if name.startswith("_wildcard.") and name.endswith(f".{PREVIEW_ZONE}") and name != keep:
            subprocess.run(["certbot", "delete", "--non-interactive", "--cert-name", name], capture_output=True,
                           timeout=120, check=False)


@pytest.fixture
def dns01(settings, dns01_servers):
    """The panel's ACME settings pointed at the DNS-01 pebble; its certificate gone afterwards."""
    knot, pebble = dns01_servers
    settings.ACME_FROM_ENVIRONMENT = {"directory_url": pebble.directory, "ca_bundle": pebble.ca_bundle}
    forget_wildcards_of_earlier_runs()
    yield knot, pebble
    forget_wildcards_of_earlier_runs()
    # The test key's file goes with the certificate that used it.
    CREDENTIALS.unlink(missing_ok=True)


def cert_text(path: Path) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(path)], capture_output=True, text=True,
                          check=True).stdout


def test_preview_domain_gets_a_wildcard_certificate_by_dns01_and_new_sites_are_served_on_it(
        api_client, local_node, dns01):
    knot, pebble = dns01
    domain = knot.zone

    # Settings through the API: stored, the secret write-only, a job per active node.
    response = api_client.patch("/api/settings", {
        "preview_domain": domain.upper() + ".", "dns01_provider": "rfc2136",
        "dns01_rfc2136_server": "127.0.0.1", "dns01_rfc2136_port": str(knot.port),
        "dns01_rfc2136_key_name": knot.key_name, "dns01_rfc2136_algorithm": "hmac-sha256",
        "dns01_rfc2136_secret": knot.secret, "dns01_propagation_seconds": "1",
    }, format="json")
    assert response.status_code == 200, response.content
    assert knot.secret not in response.content.decode()
    body = response.json()
    assert body["preview_domain"] == domain and body["dns01_rfc2136_secret_set"] is True
    assert knot.secret not in api_client.get("/api/settings").content.decode()

    jobs = list(Job.objects.filter(job_type="preview_cert_issue"))
    assert [(job.node_id, job.status) for job in jobs] == [(local_node.pk, "queued")]
    assert runner.run_job(jobs[0].pk) == "succeeded", job_log(jobs[0].pk)
    job = Job.objects.get(pk=jobs[0].pk)
    assert job.result["domain"] == domain and job.result["issued"] is True

    # The certificate: *.<domain>, chaining to pebble's root; no TXT record left behind.
    name = preview.certificate_name(domain)
    live = LIVE / name
    assert f"DNS:*.{domain}" in cert_text(live / "cert.pem")
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"pebble-root-{uuid.uuid4().hex}.pem"
    root.write_text(pebble.root_pem())
    try:
        verified = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(live / "chain.pem"),
                                   str(live / "cert.pem")], capture_output=True, text=True)
    finally:
        root.unlink()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    txt = subprocess.run(["kdig", "+short", "+timeout=1", "+retry=0", "@127.0.0.1", "-p", str(knot.port),
                          f"_acme-challenge.{domain}", "TXT"], capture_output=True, text=True, check=True).stdout
    assert txt.strip() == ""

    # The credentials file renewals use: root's alone, handed over as data.
    mode = CREDENTIALS.stat()
    assert (stat.S_IMODE(mode.st_mode), mode.st_uid) == (0o600, 0)
    assert stat.S_IMODE(CREDENTIALS.parent.stat().st_mode) == 0o700
    assert f"dns_rfc2136_secret = {knot.secret}" in CREDENTIALS.read_text()
    renewal = Path(f"/etc/letsencrypt/renewal/{name}.conf").read_text()
    assert "authenticator = dns-rfc2136" in renewal and str(CREDENTIALS) in renewal

    # Renewal is certbot's own, from the lineage's renewal configuration (what
    # the node's renewal schedule runs for every certificate): DNS-01 again
    # with the credentials file. Only this certificate, forced.
    serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(live / "cert.pem")],
                            capture_output=True, text=True, check=True).stdout
    renewed = subprocess.run(["certbot", "renew", "--non-interactive", "--cert-name", name, "--force-renewal",
                              "--no-random-sleep-on-renew"], capture_output=True, text=True, timeout=300,
                             env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                                  "REQUESTS_CA_BUNDLE": pebble.ca_bundle})
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(live / "cert.pem")],
                          capture_output=True, text=True, check=True).stdout != serial

    # A new site: its preview URL on the preview domain, HTTPS with the wildcard certificate.
    tag = uuid.uuid4().hex[:6]
    site, production = create_site(api_client, "Preview Parlour", f"parlour-{tag}")
    try:
        assert production.preview_url == f"https://{production.id.hex[:8]}.{domain}"
        host = production.preview_url.removeprefix("https://")
        status, _, page = https_get(host, pebble.root_pem())
        assert status == 200 and b"Preview Parlour" in page
        status, headers = http_get(host, "/about/?x=1")
        assert status == 301 and headers["Location"] == f"https://{host}/about/?x=1"
        # The site's own job found the certificate there and did not ask again.
        create_job = Job.objects.filter(job_type="site_create", site=site).get()
        assert f"*.{domain}: present" in job_log(create_job.pk)

        # A staging clone: its own preview host under the same certificate.
        response = api_client.post(f"/api/sites/{site.id}/environments",
                                   {"name": "Staging", "slug": "staging", "type": "staging",
                                    "promotion_preset": "content-protect"}, format="json")
        assert response.status_code == 202, response.content
        assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
        staging = Environment.objects.get(site=site, slug="staging")
        assert staging.preview_url == f"https://{staging.id.hex[:8]}.{domain}"
        status, _, page = https_get(staging.preview_url.removeprefix("https://"), pebble.root_pem())
        assert status == 200 and b"Preview Parlour" in page

        # The secret is in no API answer, job log or audit entry.
        for path in ("/api/settings", f"/api/jobs/{job.pk}", f"/api/jobs/{job.pk}/log", f"/api/jobs/{create_job.pk}",
                     f"/api/jobs/{create_job.pk}/log",
                     f"/api/environments/{production.pk}"):
            assert knot.secret not in api_client.get(path).content.decode()
        assert not JobLogLine.objects.filter(message__contains=knot.secret).exists()
        assert not JobLogLine.objects.filter(message__contains=knot.secret[:12]).exists()
        entries = list(AuditEntry.objects.all())
        assert entries and not any(knot.secret in str(entry.__dict__) for entry in entries)
        assert sorted(AuditEntry.objects.get(action="panelsettings.update").details["changed"]) == [
            "dns01_propagation_seconds", "dns01_provider", "dns01_rfc2136_algorithm", "dns01_rfc2136_key_name",
            "dns01_rfc2136_port", "dns01_rfc2136_secret", "dns01_rfc2136_server", "preview_domain"]
        assert PanelSettings.load().dns01_rfc2136_secret == knot.secret
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def test_bad_preview_settings_change_nothing(api_client, local_node, dns01):
    knot, _ = dns01
    for body in (
        {"preview_domain": f"*.{knot.zone}", "dns01_provider": "rfc2136"},
        {"preview_domain": knot.zone, "dns01_provider": "route53"},
        {"preview_domain": knot.zone, "dns01_provider": "rfc2136", "dns01_rfc2136_server": "127.0.0.1"},
    ):
        response = api_client.patch("/api/settings", body, format="json")
        assert response.status_code == 400, response.content
        assert set(response.json()) >= {"code", "message"} and response.json()["code"] == "bad_request"
    row = PanelSettings.load()
    assert (row.preview_domain, row.dns01_provider, row.dns01_rfc2136_server) == ("", "", "")
    assert not Job.objects.filter(job_type="preview_cert_issue").exists()


@pytest.mark.parametrize("change", [
    {"credentials": {"dns_rfc2136_secret": "c2VjcmV0\ndns_rfc2136_server = 203.0.113.9"}},
    {"credentials": {"dns_rfc2136_secret\nx": "c2VjcmV0"}},
    {"credentials": {}},
    {"domain": "evil.test/../../etc", "certificate_name": "_wildcard.evil.test/../../etc"},
    {"certificate_name": "x.preview.test"},
    {"provider": {"name": "rfc2136", "authenticator": "dns-rfc2136; id", "package": "python3-certbot-dns-rfc2136",
                  "credentials_option": "--dns-rfc2136; id-credentials",
                  "propagation_option": "--dns-rfc2136; id-propagation-seconds"}},
    {"provider": {"name": "rfc2136", "authenticator": "dns-rfc2136", "package": "nginx-extras",
                  "credentials_option": "--dns-rfc2136-credentials",
                  "propagation_option": "--dns-rfc2136-propagation-seconds"}},
])
def test_preview_cert_refuses_parameters_that_would_reach_past_its_file(local_node, change):
    """The node program checks what it writes into the credentials file and
    puts on certbot's command line: one line per value, known names only."""
    from apps.jobs.errors import JobError
    from apps.nodes.remote_exec import run_program

    params = {
        "domain": "refused.preview.test", "certificate_name": "_wildcard.refused.preview.test",
        "acme": {"directory": "https://127.0.0.1:1/dir", "email": "", "ca_bundle": ""},
        "provider": {"name": "rfc2136", "authenticator": "dns-rfc2136", "package": "python3-certbot-dns-rfc2136",
                     "credentials_option": "--dns-rfc2136-credentials",
                     "propagation_option": "--dns-rfc2136-propagation-seconds"},
        "credentials": {"dns_rfc2136_server": "127.0.0.1", "dns_rfc2136_secret": "c2VjcmV0"},
        "propagation_seconds": None, "force": False,
    }
    before = CREDENTIALS.read_bytes() if CREDENTIALS.exists() else None
    with pytest.raises(JobError) as caught:
        run_program(local_node, "preview_cert.py", {**params, **change}, timeout=60)
    assert caught.value.code == "bad_parameters"
    assert (CREDENTIALS.read_bytes() if CREDENTIALS.exists() else None) == before
    assert not (LIVE / "_wildcard.refused.preview.test").exists()
