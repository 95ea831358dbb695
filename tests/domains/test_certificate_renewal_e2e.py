"""Renewal on the node: scheduled by cron where there is no systemd (as
here), run by the program the schedule names, Nginx reloaded by the
provisioned certbot hook so the renewed certificate is the one served; node
health reports each certificate's expiry and the last renewal run."""

import socket
import ssl
import subprocess
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.domains.models import Domain
from apps.nodes.health import refresh_stale
from apps.nodes.models import Node
from apps.nodes.remote_exec import run_program
from tests.domains.servers import POINTED, PREVIEW_ZONE
from tests.domains.test_domains_e2e import add, job_log
from tests.sites.test_site_lifecycle_e2e import create_site
from apps.jobs import runner

pytestmark = pytest.mark.django_db(transaction=True)

CRON_FILE = "/etc/cron.d/pressluft-certificates"


def served_serial(hostname, root_pem) -> str:
    context = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der, capture_output=True,
                         check=True).stdout
    return out.decode().strip()


def file_serial(hostname) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", f"/etc/letsencrypt/live/{hostname}/cert.pem"],
                          capture_output=True, text=True, check=True).stdout.strip()


def forget_certificates_of_earlier_runs():
    """A forced renewal renews every certificate on the node. One left by an
    interrupted earlier test run (a name in the tests' own zone, issued by a
    pebble that is gone) would fail it for reasons outside this test."""
    from tests.domains.test_panel_https_e2e import forget_panel_domain_of_earlier_runs

    forget_panel_domain_of_earlier_runs()
    live = Path("/etc/letsencrypt/live")
    names = [path.name for path in live.iterdir() if path.is_dir()] if live.is_dir() else []
    for name in names:
        # The preview domain's wildcard certificates too (tests/domains/test_preview_domain_e2e.py).
        leftover_wildcard = name.startswith("_wildcard.") and name.endswith(f".{PREVIEW_ZONE}")
        if (name.endswith(f".{POINTED}") and not Domain.objects.filter(hostname=name).exists()) or leftover_wildcard:
            subprocess.run(["certbot", "delete", "--non-interactive", "--cert-name", name], capture_output=True,
                           timeout=120, check=False)


def test_renewal_is_scheduled_runs_and_reloads_nginx(api_client, local_node, acme, settings):
    forget_certificates_of_earlier_runs()
    tag = uuid.uuid4().hex[:6]
    site, production = create_site(api_client, "Renewal Rooms", f"renew-{tag}")
    hostname = f"renew-{tag}.{POINTED}"
    try:
        job = add(api_client, production, hostname)
        assert job.status == "succeeded", job_log(job.pk)
        root_pem = acme.root_pem()
        before = served_serial(hostname, root_pem)
        assert before == file_serial(hostname)

        # No systemd here: a cron job runs the renewal program twice a day.
        cron = open(CRON_FILE).read()
        program = f"{settings.NODE_LIB_DIR}/certificates.py"
        assert f"root /usr/bin/python3 {program}" in cron

        # What cron runs (forced, as none is due yet): a new certificate, and Nginx serves it.
        done = subprocess.run(["/usr/bin/python3", program, "--force"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        after = file_serial(hostname)
        assert after != before
        for _ in range(100):  # the hook's reload takes effect in the background
            if served_serial(hostname, root_pem) == after:
                break
            time.sleep(0.1)
        assert served_serial(hostname, root_pem) == after

        # Node health: the certificate's expiry and the renewal run.
        health = run_program(local_node, "node_health.py", {}, timeout=60)
        report = health["certificates"]
        assert report["certificates"][hostname] is not None
        assert report["renewal"]["ok"] is True
        domain = Domain.objects.get(hostname=hostname)
        assert domain.tls_expires_at is not None

        # The panel's own health check (the API's refresh, the admin, the
        # scheduler's refresh of old reports) records the renewed expiry on the domain.
        Node.objects.filter(pk=local_node.pk).update(health_checked_at=timezone.now() - timedelta(days=1))
        assert refresh_stale() >= 1
        domain.refresh_from_db()
        renewed = Node.objects.get(pk=local_node.pk).health["certificates"]["certificates"][hostname]
        assert domain.tls_expires_at == datetime.fromisoformat(renewed)
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])
