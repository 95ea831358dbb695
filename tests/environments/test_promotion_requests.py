"""Asking for a promotion (API, management command): every refusal answers
before anything is queued — 400 for a bad body, 404 for an unknown
environment, 409 for production as source, a target that is not the site's
production, an environment that is not active, drift drifted or unknown, no
backup storage —, and a clean staging environment's promotion is queued on
production with the staging environment as its source. The plan endpoint
refuses the same way and answers 400 without a target."""

import uuid

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEntry
from apps.environments.choices import DriftStatus, EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.environments.models import Environment, Release
from apps.jobs.models import Job
from apps.sites.factories import SiteFactory
from tests.backups.conftest import backup_storage, s3_request_log, s3_server  # noqa: F401

pytestmark = pytest.mark.django_db


def with_release(environment):
    release = Release.objects.create(environment=environment, source_type="core", source_ref="wordpress-core",
                                     directory="20261204T100000Z")
    Environment.objects.filter(pk=environment.pk).update(current_release=release)
    environment.refresh_from_db()
    return environment


@pytest.fixture
def pair(site_with_production):
    site, production = site_with_production
    with_release(production)
    staging = with_release(EnvironmentFactory(site=site, node=production.node, slug="staging", name="Staging",
                                              environment_type=EnvironmentType.STAGING,
                                              promotion_preset="commerce-protect"))
    Environment.objects.filter(pk=staging.pk).update(drift_status=DriftStatus.CLEAN)
    staging.refresh_from_db()
    return site, production, staging


def promote(api_client, source, body):
    return api_client.post(f"/api/environments/{source.pk}/promote", body, format="json")


def refused(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response.json()["code"] == code, response.content
    assert not Job.objects.exists()


def test_a_clean_staging_environment_is_promoted_into_its_production(api_client, pair, backup_storage):
    site, production, staging = pair
    response = promote(api_client, staging, {"target_environment_id": str(production.pk)})
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.job_type, job.environment_id, job.payload["source_environment_id"]) == (
        "env_promote", production.pk, str(staging.pk))
    entry = AuditEntry.objects.get(job=job)
    assert entry.action == "environment.promote" and entry.resource_id == str(staging.pk)


@pytest.mark.parametrize("body", [{}, {"target_environment_id": "production"}, {"target_environment_id": 5},
                                  {"target_environment_id": None}, ["x"],
                                  {"target_environment_id": "00000000-0000-4000-8000-000000000000", "force": True}])
def test_a_bad_body_is_400(api_client, pair, backup_storage, body):
    refused(promote(api_client, pair[2], body), 400, "bad_request")


def test_unknown_environments_are_404(api_client, pair, backup_storage):
    _, production, staging = pair
    unknown = str(uuid.uuid4())
    refused(api_client.post(f"/api/environments/{unknown}/promote", {"target_environment_id": str(production.pk)},
                            format="json"), 404, "not_found")
    refused(promote(api_client, staging, {"target_environment_id": unknown}), 404, "not_found")


def test_production_as_source_and_a_wrong_target_are_409(api_client, pair, backup_storage):
    site, production, staging = pair
    refused(promote(api_client, production, {"target_environment_id": str(production.pk)}), 409,
            "promotion_source_is_production")
    refused(promote(api_client, staging, {"target_environment_id": str(staging.pk)}), 409, "promotion_target_invalid")
    other_site = SiteFactory()
    other = EnvironmentFactory(site=other_site, node=production.node, slug="production")
    refused(promote(api_client, staging, {"target_environment_id": str(other.pk)}), 409, "promotion_target_invalid")


@pytest.mark.parametrize("which", ["source", "target"])
def test_an_environment_not_active_is_409(api_client, pair, backup_storage, which):
    _, production, staging = pair
    Environment.objects.filter(pk=(staging if which == "source" else production).pk).update(status="deploying")
    response = promote(api_client, staging, {"target_environment_id": str(production.pk)})
    refused(response, 409, "environment_not_active")


@pytest.mark.parametrize("status,code", [(DriftStatus.DRIFTED, "promotion_drifted"),
                                         (DriftStatus.UNKNOWN, "promotion_drift_unknown")])
def test_drifted_or_unknown_is_409_without_override(api_client, pair, backup_storage, status, code):
    site, production, staging = pair
    Environment.objects.filter(pk=staging.pk).update(drift_status=status)
    response = promote(api_client, staging, {"target_environment_id": str(production.pk)})
    refused(response, 409, code)
    assert response.json()["details"]["drift_status"] == status
    with pytest.raises(CommandError, match=code):
        call_command("promote_environment", site.slug, staging.slug)
    assert not Job.objects.exists()


def test_no_backup_storage_is_409(api_client, pair):
    _, production, staging = pair
    refused(promote(api_client, staging, {"target_environment_id": str(production.pk)}), 409,
            "backup_storage_not_configured")


def test_the_command_queues_the_same_job(pair, backup_storage, capsys):
    site, production, staging = pair
    call_command("promote_environment", site.slug, staging.slug)
    job = Job.objects.get()
    assert (job.job_type, job.environment_id) == ("env_promote", production.pk)
    assert capsys.readouterr().out.strip() == str(job.pk)
    assert AuditEntry.objects.get(job=job).action == "environment.promote"


def test_the_plan_needs_a_target_and_refuses_like_the_promotion(api_client, pair):
    _, production, staging = pair
    for query in ("", "?target=", "?target=production"):
        response = api_client.get(f"/api/environments/{staging.pk}/promotion-plan{query}")
        assert response.status_code == 400 and response.json()["code"] == "bad_request", response.content
        assert "target" in response.json()["details"]["fields"]
    response = api_client.get(f"/api/environments/{production.pk}/promotion-plan?target={production.pk}")
    assert response.status_code == 409 and response.json()["code"] == "promotion_source_is_production"
    response = api_client.get(f"/api/environments/{staging.pk}/promotion-plan?target={uuid.uuid4()}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.django_db(transaction=True)
def test_a_source_that_failed_while_queued_is_not_promoted(api_client, pair, backup_storage):
    from apps.jobs import runner

    _, production, staging = pair
    response = promote(api_client, staging, {"target_environment_id": str(production.pk)})
    assert response.status_code == 202, response.content
    Environment.objects.filter(pk=staging.pk).update(status="failed")
    runner.run_job(response.json()["job_id"])  # refused at the claim: the marked source is failed
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.status, job.error_code) == ("failed", "resource_failed") and "staging is failed" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release.directory == "20261204T100000Z"
    assert not Release.objects.filter(environment=production, source_type="promotion").exists()
