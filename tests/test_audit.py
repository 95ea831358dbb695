"""The audit log: one entry per mutating request; job work closes its entry."""

import pytest
from django.test import Client

from apps.audit import services as audit
from apps.audit.models import AuditEntry
from apps.jobs import runner
from apps.jobs.services import enqueue_job
from tests.conftest import PASSWORD


def test_get_requests_are_not_audited(api_client, db):
    api_client.get("/api/sites")
    assert AuditEntry.objects.count() == 0


def test_successful_login_and_logout_are_audited(staff_user):
    client = Client()
    client.post("/api/login", {"email": staff_user.email, "password": PASSWORD}, content_type="application/json")
    client.post("/api/logout", content_type="application/json")
    entries = list(AuditEntry.objects.order_by("created_at").values_list("action", "result", "resource_id"))
    assert entries == [
        ("auth.login", "succeeded", str(staff_user.pk)),
        ("auth.logout", "succeeded", str(staff_user.pk)),
    ]


def test_unauthenticated_write_is_audited_as_denied(db):
    Client().post("/api/jobs/00000000-0000-4000-8000-000000000000/cancel")
    entry = AuditEntry.objects.get()
    assert (entry.result, entry.status_code, entry.user) == ("denied", 401, None)


# run_job is the worker's entry point: it manages its own transactions, so these
# tests commit for real (transactional_db) as a worker would.
@pytest.mark.django_db(transaction=True)
def test_job_entry_is_accepted_then_completed(staff_user, site_with_production):
    site, production = site_with_production
    job = enqueue_job("test_noop", environment=production, user=staff_user)
    entry = audit.record(user=staff_user, action="test.noop", resource=production, result="accepted", job=job)
    runner.run_job(str(job.pk))
    entry.refresh_from_db()
    assert entry.result == "completed"
    assert entry.completed_at is not None


@pytest.mark.django_db(transaction=True)
def test_failed_job_marks_its_entry_failed(staff_user, site_with_production):
    site, production = site_with_production
    job = enqueue_job("test_fail", environment=production, user=staff_user)
    entry = audit.record(user=staff_user, action="test.fail", resource=production, result="accepted", job=job)
    runner.run_job(str(job.pk))
    entry.refresh_from_db()
    assert entry.result == "failed"


def test_a_refused_request_is_audited_with_the_resource_it_named(site_with_production):
    from rest_framework.test import APIClient

    from apps.accounts.factories import UserFactory
    from apps.accounts.services import create_api_token

    _, production = site_with_production
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_token(UserFactory(), 'no permissions').plaintext}")
    response = client.post(f"/api/environments/{production.id}/deploy", {"source_type": "git", "source_ref": "main"},
                           format="json")
    assert response.status_code == 403
    entry = AuditEntry.objects.get()
    assert (entry.result, entry.resource_type, entry.resource_id) == ("denied", "environment", str(production.id))
