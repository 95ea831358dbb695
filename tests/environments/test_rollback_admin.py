"""The release's "Roll back to this release" action reads the rollback's
outcome (the queued job, or the refusal) and sends the browser on from it:
to the job, or back to the release whose page the button was on."""

import pytest
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.environments.models import Environment, Release
from apps.jobs.models import Job
from tests.test_admin import messages_of, run_action, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db):
    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_superuser=True))
    return client


@pytest.fixture
def releases(site_with_production):
    _, production = site_with_production
    earlier = Release.objects.create(environment=production, source_type="git", source_ref="v1",
                                     directory="20260101T000000Z", health="healthy")
    broken = Release.objects.create(environment=production, source_type="git", source_ref="v2",
                                    directory="20260102T000000Z", health="unhealthy")
    live = Release.objects.create(environment=production, source_type="git", source_ref="v3",
                                  directory="20260103T000000Z", health="healthy")
    Environment.objects.filter(pk=production.pk).update(current_release=live)
    return earlier, broken, live


def test_a_queued_rollback_leads_to_its_job(admin_client, releases):
    earlier, broken, live = releases
    assert 'value="rollback_to_release"' in admin_client.get(url(earlier)).content.decode()
    for not_offered in (broken, live):
        assert 'value="rollback_to_release"' not in admin_client.get(url(not_offered)).content.decode()

    response = run_action(admin_client, Release, "rollback_to_release", [earlier], _return_to_object="1")
    assert response.status_code == 200 and "Yes, roll back" in response.content.decode()
    response = run_action(admin_client, Release, "rollback_to_release", [earlier], _return_to_object="1", post="yes")
    job = Job.objects.get(job_type="release_rollback")
    assert response.status_code == 302 and response["Location"] == url(job)
    assert job.payload["release_id"] == str(earlier.pk)
    assert AuditEntry.objects.get(action="environment.rollback").result == AuditResult.ACCEPTED


def test_a_refused_rollback_returns_to_the_release_with_the_reason(admin_client, releases):
    _, broken, _ = releases
    response = run_action(admin_client, Release, "rollback_to_release", [broken], _return_to_object="1", post="yes")
    assert response.status_code == 302 and response["Location"] == url(broken)
    assert any("Only a healthy release" in text for text in messages_of(admin_client.get(response["Location"])))
    assert not Job.objects.exists()
    refused = AuditEntry.objects.get(action="environment.rollback")
    assert (refused.result, refused.details["code"]) == (AuditResult.FAILED, "conflict")

    # From the changelist (no page to return to): back to the list.
    response = run_action(admin_client, Release, "rollback_to_release", [broken], post="yes")
    assert response.status_code == 302 and response["Location"] == url(Release, "changelist")


def test_the_environments_release_list_rolls_back_too(admin_client, releases):
    earlier, broken, _ = releases
    releases_url = url(Environment, "releases", earlier.environment_id)
    response = admin_client.post(releases_url, {"release_id": str(broken.pk)})
    assert response["Location"] == releases_url
    response = admin_client.post(releases_url, {"release_id": str(earlier.pk)})
    assert response["Location"] == url(Job.objects.get(job_type="release_rollback"))
    assert AuditEntry.objects.filter(action="environment.rollback").count() == 2
