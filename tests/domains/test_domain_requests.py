"""Asking for domain changes (API, admin, management commands) without a
node: bad hostnames 400, duplicates 409, nothing queued when refused; the
admin's pages and the certificate flags. The node's part is in
test_domains_e2e.py."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.core.choices import LifecycleStatus
from apps.domains.factories import DomainFactory
from apps.jobs.models import Job
from apps.nodes.admin import certificate_summary

pytestmark = pytest.mark.django_db


def domains_url(environment) -> str:
    return f"/api/environments/{environment.pk}/domains"


@pytest.fixture
def admin_client(db):
    from apps.accounts.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("body", [{}, {"hostname": ""}, {"hostname": "*.example.com"}, {"hostname": "example"},
                                  {"hostname": "shop.example.com", "extra": 1}, {"hostname": 7},
                                  {"hostname": "shop.example.com", "check_dns": "maybe"}])
def test_bad_requests_are_400_and_queue_nothing(api_client, site_with_production, body):
    _, production = site_with_production
    response = api_client.post(domains_url(production), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"
    assert not Job.objects.exists()


def test_a_hostname_belongs_to_one_environment(api_client, site_with_production):
    _, production = site_with_production
    DomainFactory(environment=production, hostname="xn--bcher-kva.example")
    response = api_client.post(domains_url(production), {"hostname": "Bücher.example"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "domain_exists")
    assert not Job.objects.exists()


def test_a_queued_add_holds_its_hostname(api_client, site_with_production):
    _, production = site_with_production
    first = api_client.post(domains_url(production), {"hostname": "shop.example.com"}, format="json")
    assert first.status_code == 202, first.content
    job = Job.objects.get(pk=first.json()["job_id"])
    assert (job.job_type, job.payload) == ("domain_add", {"hostname": "shop.example.com", "check_dns": True})
    again = api_client.post(domains_url(production), {"hostname": "SHOP.example.com", "check_dns": False},
                            format="json")
    assert (again.status_code, again.json()["code"]) == (409, "domain_exists")
    assert Job.objects.count() == 1
    entry = AuditEntry.objects.get(action="environment.domain_add", result="accepted")
    assert entry.details["hostname"] == "shop.example.com"


def test_inactive_environment_is_409(api_client, site_with_production):
    _, production = site_with_production
    production.status = LifecycleStatus.DEPLOYING
    production.save()
    response = api_client.post(domains_url(production), {"hostname": "shop.example.com"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "environment_not_active")


def test_primary_needs_a_certificate(api_client, site_with_production):
    _, production = site_with_production
    pending = DomainFactory(environment=production, tls_status="pending")
    response = api_client.patch(f"/api/domains/{pending.pk}", {"is_primary": True}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "domain_not_ready")
    response = api_client.patch(f"/api/domains/{pending.pk}", {"is_primary": False}, format="json")
    assert response.status_code == 400
    assert not Job.objects.exists()
    assert api_client.delete(f"/api/domains/{pending.pk}").status_code == 202
    assert Job.objects.get().job_type == "domain_remove"


def test_unknown_domain_is_404(api_client, db):
    assert api_client.delete("/api/domains/00000000-0000-0000-0000-000000000000").status_code == 404


# --- admin ---------------------------------------------------------------------------


def test_admin_add_domain_page(admin_client, site_with_production):
    _, production = site_with_production
    page = admin_client.get(reverse("admin:environments_environment_change", args=(production.pk,))).content.decode()
    url = reverse("admin:environments_environment_add_domain", args=(production.pk,))
    assert 'value="add_domain"' in page
    refused = admin_client.post(url, {"hostname": "*.example.com", "check_dns": "on"})
    assert refused.status_code == 200 and "wildcards" in refused.content.decode()
    assert not Job.objects.exists()
    response = admin_client.post(url, {"hostname": "Shop.Example.com"})
    job = Job.objects.get(job_type="domain_add")
    assert response.status_code == 302 and str(job.pk) in response["Location"]
    assert job.payload == {"hostname": "shop.example.com", "check_dns": False}


def test_admin_domain_actions_and_flags(admin_client, site_with_production):
    _, production = site_with_production
    primary = DomainFactory(environment=production, tls_status="active", is_primary=True,
                            tls_expires_at=timezone.now() + timedelta(days=60))
    expiring = DomainFactory(environment=production, tls_status="active",
                             tls_expires_at=timezone.now() + timedelta(days=5, hours=1))
    refused = DomainFactory(environment=production, tls_status="failed", tls_error="rate limited")
    page = admin_client.get(reverse("admin:domains_domain_change", args=(expiring.pk,))).content.decode()
    assert 'value="make_primary"' in page and 'value="remove_domains"' in page
    assert "certificate expires in 5 day(s)" in page
    assert 'value="make_primary"' not in admin_client.get(
        reverse("admin:domains_domain_change", args=(primary.pk,))).content.decode()
    listing = admin_client.get(reverse("admin:domains_domain_changelist")).content.decode()
    assert "certificate failed: rate limited" in listing
    environment_page = admin_client.get(
        reverse("admin:environments_environment_change", args=(production.pk,))).content.decode()
    assert primary.hostname in environment_page and refused.hostname in environment_page

    # Remove asks first, then queues.
    changelist = reverse("admin:domains_domain_changelist")
    confirm = admin_client.post(changelist, {"action": "remove_domains", "_selected_action": [str(refused.pk)]})
    assert confirm.status_code == 200 and "Yes, remove" in confirm.content.decode()
    assert not Job.objects.exists()
    done = admin_client.post(changelist, {"action": "remove_domains", "_selected_action": [str(refused.pk)],
                                          "post": "yes"})
    assert done.status_code == 302
    assert Job.objects.filter(job_type="domain_remove").count() == 1
    admin_client.post(changelist, {"action": "make_primary", "_selected_action": [str(expiring.pk)]})
    assert Job.objects.filter(job_type="domain_primary", payload__domain_id=str(expiring.pk)).exists()


def test_node_health_flags_certificates_near_expiry_and_failed_renewal():
    soon = (timezone.now() + timedelta(days=3)).isoformat()
    later = (timezone.now() + timedelta(days=80)).isoformat()
    html = str(certificate_summary({"certificates": {"soon.example.com": soon, "later.example.com": later},
                                    "renewal": {"ok": False, "detail": "connection refused"}}))
    assert "expires in 2 day(s)" in html or "expires in 3 day(s)" in html
    assert html.count("expires in") == 1
    assert "failed" in html and "connection refused" in html


# --- management commands ----------------------------------------------------------


def test_commands(site_with_production, capsys):
    site, production = site_with_production
    call_command("domain_add", site.slug, production.slug, "Blog.Example.com", "--no-check-dns")
    job = Job.objects.get(job_type="domain_add")
    assert capsys.readouterr().out.strip() == str(job.pk)
    assert job.payload == {"hostname": "blog.example.com", "check_dns": False}
    with pytest.raises(CommandError, match="domain_exists"):
        call_command("domain_add", site.slug, production.slug, "blog.example.com")
    with pytest.raises(CommandError, match="no domain"):
        call_command("domain_remove", "blog.example.com")
    domain = DomainFactory(environment=production, hostname="old.example.com")
    call_command("domain_remove", "OLD.example.com")
    assert Job.objects.get(job_type="domain_remove").payload["domain_id"] == str(domain.pk)
    assert AuditEntry.objects.filter(action="domain.remove", result="accepted").count() == 1


def test_panel_https_command(db, capsys):
    from apps.core.models import PanelSettings
    from apps.nodes.factories import NodeFactory

    # No local node: nothing to configure (a proxy of the operator's own serves the domain).
    with pytest.raises(CommandError, match="no local node"):
        call_command("panel_https")
    assert AuditEntry.objects.get(action="panelsettings.panel_https").result == "failed"
    node = NodeFactory(is_local=True)
    PanelSettings.objects.update_or_create(pk=1, defaults={"control_plane_domain": "panel.example.com"})
    call_command("panel_https", "--no-check-dns")
    job = Job.objects.get(job_type="panel_https")
    assert capsys.readouterr().out.strip() == str(job.pk)
    assert (job.node_id, job.payload) == (node.pk, {"check_dns": False})
    assert AuditEntry.objects.filter(action="panelsettings.panel_https", result="accepted").count() == 1
    # The same again while it waits: that job.
    call_command("panel_https", "--no-check-dns")
    assert Job.objects.filter(job_type="panel_https").count() == 1


def test_admin_settings_page_shows_the_panel_https_state(admin_client, db):
    from apps.core.models import PanelSettings

    PanelSettings.objects.update_or_create(pk=1, defaults={"control_plane_domain": "panel.example.com"})
    page = admin_client.get(reverse("admin:core_panelsettings_change", args=[1])).content.decode()
    assert "Panel over HTTPS" in page and "not_managed" in page


@pytest.mark.parametrize(("listen", "upstream"), [
    ("127.0.0.1:8000", "127.0.0.1:8000"), ("0.0.0.0:8443", "127.0.0.1:8443"), ("[::]:8000", "[::1]:8000"),
    ("[::1]:9000", "[::1]:9000"), ("8001", "127.0.0.1:8001"), ("localhost:8000", "127.0.0.1:8000"),
    ("10.0.0.5:8000", None), ("[2001:db8::5]:8000", None),
])
def test_the_panels_nginx_reaches_gunicorn_on_loopback_only(listen, upstream):
    from apps.domains import panel_https
    from apps.jobs.errors import JobError

    if upstream is None:
        with pytest.raises(JobError) as refused:
            panel_https.upstream(listen)
        assert refused.value.code == "panel_not_on_loopback"
    else:
        assert panel_https.upstream(listen) == upstream


def test_the_panels_server_block(settings):
    from apps.core.panel_proxy import proxy_token
    from apps.domains import panel_https

    settings.LISTEN = "127.0.0.1:8123"
    before = panel_https.render("panel.example.com", certified=False)
    assert "proxy_pass" not in before and "443" not in before and proxy_token("panel.example.com") not in before
    assert "return 301 https://panel.example.com$request_uri;" in before
    after = panel_https.render("panel.example.com", certified=True)
    assert "proxy_pass http://127.0.0.1:8123;" in after
    assert f"proxy_set_header X-Pressluft-Proxy {proxy_token('panel.example.com')};" in after
    assert "ssl_certificate /etc/letsencrypt/live/panel.example.com/fullchain.pem;" in after
    assert f"client_max_body_size {settings.DEPLOY_ARCHIVE_MAX_BYTES + 1024 * 1024};" in after
    # The client's own forwarding headers are replaced, never appended to.
    assert "$proxy_add_x_forwarded_for" not in after


@pytest.mark.django_db(transaction=True)
def test_the_panels_domain_is_no_sites_domain(api_client, site_with_production):
    from apps.core.models import PanelSettings
    from apps.jobs import runner
    from apps.nodes.factories import NodeFactory

    _, production = site_with_production
    PanelSettings.objects.update_or_create(pk=1, defaults={"control_plane_domain": "panel.example.com"})
    response = api_client.post(f"/api/environments/{production.pk}/domains", {"hostname": "Panel.Example.com"},
                               format="json")
    assert (response.status_code, response.json()["code"]) == (409, "domain_exists")
    assert not Job.objects.filter(job_type="domain_add").exists()

    # The other way round: the job refuses before it looks at DNS or the node.
    DomainFactory(environment=production, hostname="shop.example.com")
    NodeFactory(is_local=True)
    body = api_client.patch("/api/settings", {"control_plane_domain": "shop.example.com"}, format="json").json()
    runner.run_job(body["control_plane_https"]["job_id"])
    job = Job.objects.get(job_type="panel_https")
    assert (job.status, job.error_code) == ("failed", "domain_exists")
