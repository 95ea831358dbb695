"""End to end on the real local node, with pebble as the ACME server and
dnsmasq as the DNS server (tests/domains/conftest.py): a domain that
resolves gets its certificate and serves the site over HTTPS, HTTP
redirects, a second domain answers 301 to the primary, the site's URLs move
to the primary domain and back; a hostname pointing elsewhere is refused
before anything is written."""

import http.client
import socket
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from apps.domains import node_ops
from apps.domains.models import Domain
from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.domains.servers import ELSEWHERE, ELSEWHERE_ADDRESS, POINTED
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = Path("/etc/letsencrypt/live")


def run(job_id) -> Job:
    runner.run_job(job_id)
    return Job.objects.get(pk=job_id)


def add(api_client, environment, hostname, **options) -> Job:
    response = api_client.post(f"/api/environments/{environment.pk}/domains", {"hostname": hostname, **options},
                               format="json")
    assert response.status_code == 202, response.content
    return run(response.json()["job_id"])


def remove(api_client, domain) -> Job:
    response = api_client.delete(f"/api/domains/{domain.pk}")
    assert response.status_code == 202, response.content
    return run(response.json()["job_id"])


def https_get(hostname, root_pem: str | None, path="/"):
    """GET https://hostname/ from the node's address (127.0.0.1) with SNI; the
    certificate is checked against pebble's root when ``root_pem`` is given."""
    context = ssl.create_default_context(cadata=root_pem) if root_pem else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            connection = http.client.HTTPConnection(hostname)
            connection.sock = tls
            connection.request("GET", path, headers={"Host": hostname})
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()


def http_get(hostname, path="/"):
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    connection.request("GET", path, headers={"Host": hostname})
    answer = connection.getresponse()
    return answer.status, dict(answer.getheaders())


def site_options(environment) -> dict:
    database = naming.system_name(environment)
    out = subprocess.run(["mariadb", "-N", "-B", "-e", f"SELECT option_name, option_value FROM `{database}`.wp_options "
                          "WHERE option_name IN ('siteurl', 'home')"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("\t", 1) for line in out.strip().splitlines())


def occurrences(environment, text: str) -> int:
    database = naming.system_name(environment)
    out = subprocess.run(["mariadb", "-N", "-B", "-e", f"SELECT COUNT(*) FROM `{database}`.wp_posts "
                          f"WHERE post_content LIKE '%{text}%' OR guid LIKE '%{text}%'"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


@pytest.fixture
def site(api_client, local_node, acme):
    tag = uuid.uuid4().hex[:6]
    site, production = create_site(api_client, "Domain Deli", f"deli-{tag}")
    yield site, production, tag
    response = api_client.delete(f"/api/sites/{site.id}")
    if response.status_code == 202:
        runner.run_job(response.json()["job_id"])


def test_domain_lifecycle_with_real_certificates(api_client, site, acme):
    site, production, tag = site
    preview = production.preview_url
    primary_host, second_host = f"www-{tag}.{POINTED}", f"shop-{tag}.{POINTED}"
    root_pem = acme.root_pem()

    # Uppercase and a trailing dot are the same name.
    job = add(api_client, production, f"WWW-{tag}.Pointed.Test.")
    assert job.status == "succeeded", job_log(job.pk)
    # The node's default server answers the challenge for a name without a server block: no block (and
    # reload) before certbot. (This machine's Nginx is shared: a run of another version may have put its
    # own default server there since this session's node_provision, so what it serves now decides.)
    default_server = Path("/etc/nginx/conf.d/pressluft-default-server.conf").read_text()
    skipped = "no reload before the certificate" in job_log(job.pk)
    assert skipped == ("acme-challenge" in default_server), job_log(job.pk)
    domain = Domain.objects.get(hostname=primary_host)
    assert (domain.tls_status, domain.is_primary, domain.environment_id) == ("active", True, production.pk)
    assert domain.tls_expires_at is not None
    assert job.result["leftovers"] == 0 and job.result["url"] == f"https://{primary_host}"
    production.refresh_from_db()
    assert production.primary_domain_id == domain.pk

    # HTTPS on the domain, with a certificate chaining to pebble's root.
    status, _, body = https_get(primary_host, root_pem)
    assert status == 200 and b"Domain Deli" in body
    assert (LIVE / primary_host / "fullchain.pem").exists()
    # HTTP redirects to HTTPS; the challenge path stays on HTTP.
    status, headers = http_get(primary_host, "/some/page?x=1")
    assert status == 301 and headers["Location"] == f"https://{primary_host}/some/page?x=1"
    # The site's URLs are the domain's now.
    assert site_options(production) == {"siteurl": f"https://{primary_host}", "home": f"https://{primary_host}"}
    assert occurrences(production, preview) == 0

    # A second domain: its own certificate, 301 to the primary.
    job = add(api_client, production, second_host)
    assert job.status == "succeeded", job_log(job.pk)
    second = Domain.objects.get(hostname=second_host)
    assert (second.tls_status, second.is_primary) == ("active", False)
    status, headers, _ = https_get(second_host, root_pem, "/about/")
    assert status == 301 and headers["Location"] == f"https://{primary_host}/about/"
    status, headers = http_get(second_host)
    assert status == 301 and headers["Location"] == f"https://{primary_host}/"
    listed = api_client.get(f"/api/environments/{production.pk}/domains").json()
    assert sorted(item["hostname"] for item in listed) == [second_host, primary_host]

    # Making the second one primary moves the site's URLs there, and back.
    response = api_client.patch(f"/api/domains/{second.pk}", {"is_primary": True}, format="json")
    assert response.status_code == 202, response.content
    job = run(response.json()["job_id"])
    assert job.status == "succeeded", job_log(job.pk)
    assert job.result["leftovers"] == 0
    assert site_options(production)["home"] == f"https://{second_host}"
    status, headers, _ = https_get(primary_host, root_pem, "/x")
    assert status == 301 and headers["Location"] == f"https://{second_host}/x"
    assert https_get(second_host, root_pem)[0] == 200
    response = api_client.patch(f"/api/domains/{domain.pk}", {"is_primary": True}, format="json")
    job = run(response.json()["job_id"])
    assert job.status == "succeeded" and job.result["leftovers"] == 0, job_log(job.pk)
    domain.refresh_from_db()
    second.refresh_from_db()
    assert (domain.is_primary, second.is_primary) == (True, False)
    assert site_options(production)["home"] == f"https://{primary_host}"

    # The same hostname again is refused at once, for any environment.
    response = api_client.post(f"/api/environments/{production.pk}/domains", {"hostname": second_host}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "domain_exists")

    # Removing the primary: the next domain with a certificate takes over.
    job = remove(api_client, domain)
    assert job.status == "succeeded", job_log(job.pk)
    assert not Domain.objects.filter(hostname=primary_host).exists()
    assert not (LIVE / primary_host).exists()
    second.refresh_from_db()
    assert second.is_primary
    assert site_options(production)["home"] == f"https://{second_host}"
    assert job.result["leftovers"] == 0
    # No server block shows a certificate for it any more: the handshake is
    # refused, or shows a certificate for another name.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(primary_host, root_pem)

    # Removing the last one: back to the preview URL, certificate gone, no server block left.
    job = remove(api_client, second)
    assert job.status == "succeeded", job_log(job.pk)
    assert job.result["url"] == preview and job.result["leftovers"] == 0
    assert site_options(production) == {"siteurl": preview, "home": preview}
    assert not (LIVE / second_host).exists()
    assert not Path(node_ops.vhost_path(production)).exists()
    assert http_get(urlhost(preview))[0] == 200
    production.refresh_from_db()
    assert production.primary_domain_id is None


def urlhost(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


def test_hostname_pointing_elsewhere_is_refused_naming_the_record(api_client, site, acme):
    site, production, tag = site
    hostname = f"x-{tag}.{ELSEWHERE}"
    job = add(api_client, production, hostname)
    assert job.status == "failed" and job.error_code == "dns_not_pointing", job_log(job.pk)
    assert f"A {hostname} → 127.0.0.1" in job.error_message
    assert ELSEWHERE_ADDRESS in job.error_message
    production.refresh_from_db()
    assert production.status == "active"
    # Nothing written: no record, no server block, no certificate.
    assert not Domain.objects.filter(hostname=hostname).exists()
    assert not Path(node_ops.vhost_path(production)).exists()
    assert not (LIVE / hostname).exists()
    # The node's default server answers no name it does not serve (444: the connection is closed).
    with pytest.raises(http.client.RemoteDisconnected):
        http_get(hostname)


def test_check_dns_false_attaches_and_the_recurring_retry_issues_once_dns_points(api_client, site, acme):
    site, production, tag = site
    hostname = f"later-{tag}.{ELSEWHERE}"
    job = add(api_client, production, hostname, check_dns=False)
    assert job.status == "succeeded", job_log(job.pk)
    domain = Domain.objects.get(hostname=hostname)
    assert (domain.tls_status, domain.is_primary) == ("pending", False)
    # Served on HTTP only, pointing at the site's URL, until DNS moves.
    status, headers = http_get(hostname, "/x")
    assert status == 301 and headers["Location"] == production.preview_url + "/x"
    assert site_options(production)["home"] == production.preview_url
    # The recurring retry finds it, and leaves it pending while DNS points elsewhere.
    from apps.jobs.scheduler import enqueue_recurring

    retries = [job for job in enqueue_recurring("domain_add") if job.payload["hostname"] == hostname]
    assert len(retries) == 1
    assert run(retries[0].pk).status == "succeeded"
    domain.refresh_from_db()
    assert domain.tls_status == "pending"
    removed = remove(api_client, domain)
    assert removed.status == "succeeded", job_log(removed.pk)
    assert not Path(node_ops.vhost_path(production)).exists()

    # A domain attached while its DNS pointed elsewhere, whose DNS has moved to
    # the node since (the test's DNS server cannot change its answers, so the
    # record stands for that moment): the recurring retry gets its certificate.
    moved = Domain.objects.create(environment=production, hostname=f"moved-{tag}.{POINTED}")
    retries = [job for job in enqueue_recurring("domain_add") if job.payload["hostname"] == moved.hostname]
    assert len(retries) == 1
    job = run(retries[0].pk)
    assert job.status == "succeeded", job_log(job.pk)
    moved.refresh_from_db()
    assert (moved.tls_status, moved.is_primary) == ("active", True)
    assert https_get(moved.hostname, acme.root_pem())[0] == 200
    assert site_options(production)["home"] == f"https://{moved.hostname}"
    removed = remove(api_client, moved)
    assert removed.status == "succeeded", job_log(removed.pk)
    assert site_options(production)["home"] == production.preview_url


def test_deleting_the_site_removes_its_domains_from_the_node(api_client, local_node, acme):
    tag = uuid.uuid4().hex[:6]
    site, production = create_site(api_client, "Short Lived", f"short-{tag}")
    hostname = f"gone-{tag}.{POINTED}"
    job = add(api_client, production, hostname)
    assert job.status == "succeeded", job_log(job.pk)
    assert (LIVE / hostname).exists() and Path(node_ops.vhost_path(production)).exists()
    job = run(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])
    assert job.status == "succeeded", job_log(job.pk)
    assert not (LIVE / hostname).exists()
    assert not Path(node_ops.vhost_path(production)).exists()
    assert not Domain.objects.filter(hostname=hostname).exists()
