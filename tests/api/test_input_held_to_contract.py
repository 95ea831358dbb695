"""Request input is held to the contract's types: what the contract does not
allow is refused (400, nothing created), what it allows is taken. Found by
tests/api/test_contract_fuzz.py; here each case once, by hand."""

import pytest

from apps.jobs.models import Job
from apps.sites.models import Site


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "Zero", "slug": 0}, "slug"),  # was taken as the site "0"
        ({"name": "Zero", "slug": "zero", "node_id": 0}, "node_id"),  # was the nil UUID
        ({"name": 7, "slug": "seven"}, "name"),
        ({"name": "Tab\there", "slug": "tab"}, "name"),
        ({"name": "\u3000", "slug": "blank"}, "name"),
        ({"name": "Padded", "slug": " padded"}, "slug"),
        ({"name": "Newline", "slug": "newline\n"}, "slug"),
        ({"name": "Extra", "slug": "extra", "color": "red"}, "color"),
    ],
)
def test_a_site_body_the_contract_does_not_allow_is_refused(api_client, node, body, field):
    response = api_client.post("/api/sites", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "bad_request"
    assert field in response.json()["details"]["fields"]
    assert not Site.objects.exists() and not Job.objects.exists()


def test_a_name_is_trimmed_and_may_be_any_printable_text(api_client, node):
    response = api_client.post("/api/sites", {"name": "  Café ✓ ", "slug": "cafe"}, format="json")
    assert response.status_code == 202, response.json()
    assert Site.objects.get(slug="cafe").name == "Café ✓"


@pytest.mark.parametrize(
    "body", ['{"apply_firewall": "true"}', '{"extra_tcp_ports": ["8080"]}', "[]", "null", "0", '""'],
)
def test_provision_options_of_another_type_are_refused(api_client, node, body):
    response = api_client.post(f"/api/nodes/{node.pk}/provision", body, content_type="application/json")
    assert response.status_code == 400, response.json()
    assert not Job.objects.exists()


def test_provision_without_a_body_takes_the_defaults(api_client, node):
    assert api_client.post(f"/api/nodes/{node.pk}/provision").status_code == 202


def test_an_integral_number_is_an_integer(api_client, node):
    # JSON Schema's integer includes 8080.0.
    response = api_client.post(f"/api/nodes/{node.pk}/provision", {"extra_tcp_ports": [8080.0]}, format="json")
    assert response.status_code == 202, response.json()
    assert Job.objects.get().payload["extra_tcp_ports"] == [8080]


@pytest.mark.parametrize(
    "query",
    ["status=", "status=gone", "limit=", "limit=0", "limit=501", "limit=%2B5", "limit=1_0", "limit=%205", "offset=-1"],
)
def test_list_parameters_the_contract_does_not_allow_are_refused(api_client, query):
    response = api_client.get(f"/api/sites?{query}")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "bad_request"


def test_an_empty_free_text_filter_means_any(api_client, site_with_production):
    assert api_client.get("/api/jobs?job_type=").status_code == 200


@pytest.mark.parametrize("query", ["after=", "after=x", "after=1.5", "after=%2B1", "after=1_0"])
def test_a_log_position_that_is_not_an_integer_is_refused(api_client, site_with_production, query):
    from apps.jobs.factories import JobFactory

    job = JobFactory(site=site_with_production[0])
    response = api_client.get(f"/api/jobs/{job.pk}/log?{query}")
    assert response.status_code == 400, response.json()


@pytest.mark.parametrize("refresh", ["yes", "null", "", "2", "TRUE"])
def test_node_health_takes_only_the_documented_refresh_values(api_client, node, refresh):
    response = api_client.get(f"/api/nodes/{node.pk}/health?refresh={refresh}")
    assert response.status_code == 400, response.json()
    assert "refresh" in response.json()["details"]["fields"]


def test_node_health_without_refresh_is_the_last_report(api_client, node):
    for query in ("", "?refresh=0", "?refresh=false"):
        response = api_client.get(f"/api/nodes/{node.pk}/health{query}")
        assert response.status_code == 200, response.json()
        assert response.json() == {"checked_at": None, "health": {}}
