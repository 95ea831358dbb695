"""List endpoints: plain arrays, filters, bounded pages with a Link header, few queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.backups.factories import BackupFactory
from apps.domains.factories import DomainFactory
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.jobs.factories import JobFactory
from apps.sites.factories import SiteFactory


def test_sites_list_is_a_plain_array_with_contract_fields(api_client, site_with_production):
    site, production = site_with_production
    body = api_client.get("/api/sites").json()
    assert isinstance(body, list)
    assert body == [
        {
            "id": str(site.id),
            "name": site.name,
            "slug": site.slug,
            "status": "active",
            "primary_environment_id": str(production.id),
            "created_at": body[0]["created_at"],
            "updated_at": body[0]["updated_at"],
            "state_version": 1,
        }
    ]
    assert body[0]["created_at"].endswith("Z")


def test_pages_are_bounded_and_linked(api_client, db):
    SiteFactory.create_batch(7)
    first = api_client.get("/api/sites?limit=3")
    assert len(first.json()) == 3
    assert 'rel="next"' in first["Link"]
    next_url = first["Link"].split(";")[0].strip("<>")
    second = api_client.get(next_url)
    third = api_client.get(second["Link"].split(";")[0].strip("<>"))
    assert len(second.json()) == 3 and len(third.json()) == 1
    assert "Link" not in third
    slugs = [s["slug"] for page in (first, second, third) for s in page.json()]
    assert len(set(slugs)) == 7


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=abc", "offset=-1"])
def test_bad_page_parameters_are_400(api_client, query):
    response = api_client.get(f"/api/sites?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_sites_filter_by_status(api_client, db):
    SiteFactory(status="failed")
    SiteFactory()
    body = api_client.get("/api/sites?status=failed").json()
    assert [s["status"] for s in body] == ["failed"]


def test_unknown_filter_value_is_400(api_client, db):
    response = api_client.get("/api/sites?status=exploded")
    assert response.status_code == 400
    assert "status" in response.json()["details"]["fields"]


def test_site_environments_and_type_filter(api_client, node, site_with_production):
    site, production = site_with_production
    staging = EnvironmentFactory(site=site, node=node, environment_type=EnvironmentType.STAGING, slug="staging")
    body = api_client.get(f"/api/sites/{site.id}/environments").json()
    assert {e["id"] for e in body} == {str(production.id), str(staging.id)}
    only = api_client.get(f"/api/sites/{site.id}/environments?type=staging").json()
    assert [e["id"] for e in only] == [str(staging.id)]
    assert only[0]["preview_url"].startswith(f"http://{staging.id.hex[:8]}.")


def test_environment_list_of_unknown_site_is_404(api_client, db):
    response = api_client.get("/api/sites/00000000-0000-4000-8000-000000000000/environments")
    assert response.status_code == 404


def test_environment_backups_and_domains(api_client, site_with_production):
    _, production = site_with_production
    backup = BackupFactory(environment=production)
    BackupFactory(environment=production, status="failed")
    domain = DomainFactory(environment=production)
    backups = api_client.get(f"/api/environments/{production.id}/backups?status=pending").json()
    assert [b["id"] for b in backups] == [str(backup.id)]
    assert backups[0]["storage_type"] == "s3"
    domains = api_client.get(f"/api/environments/{production.id}/domains").json()
    assert domains[0]["hostname"] == domain.hostname
    assert domains[0]["tls_issuer"] == "letsencrypt"


def test_jobs_filters(api_client, node, site_with_production):
    site, production = site_with_production
    mine = JobFactory(site=site, environment=production, node=node, job_type="test_noop")
    JobFactory(job_type="test_record", status="succeeded")
    assert [j["id"] for j in api_client.get(f"/api/jobs?site={site.id}").json()] == [str(mine.id)]
    assert [j["id"] for j in api_client.get("/api/jobs?status=queued").json()] == [str(mine.id)]
    assert len(api_client.get("/api/jobs?job_type=test_record").json()) == 1
    assert api_client.get("/api/jobs?site=nope").status_code == 400


@pytest.mark.parametrize("count", [10, 200])
def test_list_query_count_does_not_grow_with_rows(api_client, node, count):
    for i in range(count):
        site = SiteFactory()
        EnvironmentFactory(site=site, node=node, slug="production")
        JobFactory(site=site, node=node)
    for path in ("/api/sites?limit=500", "/api/jobs?limit=500"):
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(path)
        assert response.status_code == 200
        assert len(response.json()) == count
        # token lookup + token last-used update (at most) + the user's permissions
        # (their own and their groups') + the page itself
        assert len(queries) <= 5, [q["sql"] for q in queries]


def test_metrics(api_client, node, site_with_production):
    site, _ = site_with_production
    JobFactory(site=site, node=node, status="running")
    JobFactory(status="queued")
    JobFactory(status="queued")
    JobFactory(status="failed")
    assert api_client.get("/api/metrics").json() == {
        "jobs_running": 1,
        "jobs_queued": 2,
        "nodes_active": 1,
        "sites_total": 1,
    }


def test_job_detail_and_log(api_client, node):
    from apps.jobs.models import JobLogLine

    job = JobFactory(node=node)
    for seq in range(1, 4):
        JobLogLine.objects.create(job=job, seq=seq, message=f"line {seq}")
    detail = api_client.get(f"/api/jobs/{job.id}").json()
    assert detail["status"] == "queued" and detail["attempt_count"] == 0 and detail["max_attempts"] == 3
    lines = api_client.get(f"/api/jobs/{job.id}/log?after=1").json()
    assert [line["seq"] for line in lines] == [2, 3]


def list_endpoints(site, environment, job):
    """Every GET endpoint of the URL conf whose view pages with LinkHeaderPagination,
    with ids of existing objects: a new list endpoint is covered by itself."""
    from rest_framework.generics import GenericAPIView

    from apps.core.pagination import LinkHeaderPagination
    from tests.api.routes import api_url_patterns

    ids = {"sites": site.id, "environments": environment.id, "jobs": job.id}
    found = []
    for route, pattern in api_url_patterns():
        view = getattr(pattern.callback, "view_class", None)
        if not (view and issubclass(view, GenericAPIView) and hasattr(view, "list")):
            continue
        if view.pagination_class is not LinkHeaderPagination:
            continue
        if "<uuid:id>" in route:
            route = route.replace("<uuid:id>", str(ids[route.split("/")[0]]))
        found.append(f"/api/{route}")
    return found


@pytest.mark.parametrize("query", [
    "offset=9223372036854775808", "offset=9223372036854775807", "offset=1000000001",
    "offset=" + "9" * 5000, "limit=9223372036854775808", "limit=" + "9" * 5000,
    "limit=500&offset=9223372036854775300",
])
def test_page_parameters_beyond_any_table_are_400_on_every_list(api_client, site_with_production, query):
    site, production = site_with_production
    job = JobFactory(site=site, environment=production)
    endpoints = list_endpoints(site, production, job)
    assert "/api/sites" in endpoints and "/api/jobs" in endpoints and len(endpoints) >= 6
    for endpoint in endpoints:
        response = api_client.get(f"{endpoint}?{query}")
        assert response.status_code == 400, (endpoint, response.content)
        body = response.json()
        assert body["code"] == "bad_request" and body["message"].startswith(("offset", "limit")), body


def test_the_largest_offset_is_an_empty_page(api_client, site_with_production):
    response = api_client.get("/api/sites?offset=1000000000&limit=500")
    assert response.status_code == 200 and response.json() == []


def test_job_log_after_beyond_any_line_is_empty_not_an_error(api_client, site_with_production):
    from apps.jobs.models import JobLogLine

    site, production = site_with_production
    job = JobFactory(site=site, environment=production)
    JobLogLine.objects.create(job=job, seq=1, message="line 1")
    for after, seqs in (("9223372036854775808", []), ("9" * 30, []), ("-9223372036854775809", [1])):
        response = api_client.get(f"/api/jobs/{job.id}/log?after={after}")
        assert response.status_code == 200, response.content
        assert [line["seq"] for line in response.json()] == seqs
