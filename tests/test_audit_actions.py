"""audit.action: the one way an operator action is audited, whoever runs it
(API request, admin page, management command): exactly one entry, with the
actor and the outcome."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from apps.accounts.factories import UserFactory
from apps.accounts.models import ApiToken
from apps.audit import services as audit
from apps.audit.models import AuditEntry
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.environments.models import Environment
from apps.jobs.factories import JobFactory
from apps.sites.models import Site


@pytest.fixture
def operator(staff_user):
    return audit.Actor(user=staff_user, client_address="192.0.2.7")


def test_an_action_that_completes_is_one_succeeded_entry(operator, site_with_production):
    site, _ = site_with_production
    with audit.action(operator, "site.reset", resource=site, details={"via": "test"}) as attempt:
        attempt.describe(details={"status": "active"})
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.result, entry.resource_type, entry.resource_id) == (
        "site.reset", "succeeded", "site", str(site.pk))
    assert (entry.user, entry.actor, entry.client_address) == (operator.user, operator.user.email, "192.0.2.7")
    assert entry.details == {"via": "test", "status": "active"}
    assert entry.status_code is None


def test_an_action_that_hands_its_work_to_a_job_is_one_accepted_entry(operator, site_with_production):
    site, production = site_with_production
    job = JobFactory(site=site, environment=production, node=production.node)
    with audit.action(operator, "environment.deploy", resource=production) as attempt:
        attempt.describe(job=job)
    entry = AuditEntry.objects.get()
    assert (entry.result, entry.job, entry.resource_id) == ("accepted", job, str(production.pk))


def test_a_refused_action_is_one_failed_entry_and_the_error_goes_on(operator, site_with_production):
    site, _ = site_with_production
    with pytest.raises(ApiError) as raised:
        with audit.action(operator, "site.reset", resource=site, details={"via": "test"}):
            raise ApiError("resource_not_failed", "The site is not in a failed state.")
    assert raised.value.code == "resource_not_failed"
    entry = AuditEntry.objects.get()
    assert entry.result == "failed"
    assert entry.details == {"via": "test", "code": "resource_not_failed",
                             "message": "The site is not in a failed state."}


def test_an_unexpected_error_is_a_failed_entry_too(operator):
    with pytest.raises(RuntimeError):
        with audit.action(operator, "node.register", resource_type="node"):
            raise RuntimeError("boom")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.result, entry.resource_type, entry.resource_id) == (
        "node.register", "failed", "node", "")


def test_a_refused_request_is_one_denied_entry(operator):
    # What the API middleware does: the response's status decides.
    with audit.action(operator, "site.delete", resource_type="site", resource_id="x") as attempt:
        attempt.status_code = 403
    entry = AuditEntry.objects.get()
    assert (entry.result, entry.status_code) == ("denied", 403)


def test_an_action_that_changed_nothing_writes_no_entry(operator):
    with audit.action(operator, "user.create", resource_type="user") as attempt:
        attempt.changed_nothing()
    assert not AuditEntry.objects.exists()


def test_a_command_writes_exactly_one_entry_as_its_actor(staff_user):
    call_command("create_api_token", staff_user.email, name="CI", stdout=StringIO(), stderr=StringIO())
    token = ApiToken.objects.get(name="CI")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.user, entry.action, entry.result) == (
        "manage.py create_api_token", None, "apitoken.create", "succeeded")
    assert (entry.resource_type, entry.resource_id) == ("apitoken", str(token.pk))


def test_a_refused_command_writes_exactly_one_failed_entry(site_with_production):
    # Before the shared layer, a command whose service refused wrote nothing.
    site, production = site_with_production
    Environment.objects.filter(pk=production.pk).update(status=LifecycleStatus.FAILED)
    with pytest.raises(CommandError):
        call_command("deploy_environment", site.slug, production.slug, ref="main",
                     stdout=StringIO(), stderr=StringIO())
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.result, entry.resource_id) == (
        "manage.py deploy_environment", "environment.deploy", "failed", str(production.pk))
    assert entry.details["code"]


def test_an_admin_action_writes_exactly_one_entry_as_the_signed_in_user(db, site_with_production):
    superuser = UserFactory(email="root@example.test", is_superuser=True)
    client = Client(REMOTE_ADDR="198.51.100.4")
    client.force_login(superuser)
    site, _ = site_with_production
    Site.objects.filter(pk=site.pk).update(status=LifecycleStatus.FAILED)
    client.post(reverse("admin:sites_site_changelist"),
                {"action": "reset_failed_state", "index": 0, "_selected_action": [str(site.pk)]})
    site.refresh_from_db()
    assert site.status == LifecycleStatus.ACTIVE
    entry = AuditEntry.objects.get()
    assert (entry.user, entry.actor, entry.action, entry.result) == (
        superuser, superuser.email, "site.reset", "succeeded")
    assert (entry.resource_id, entry.client_address) == (str(site.pk), "198.51.100.4")
    assert entry.details == {"via": "admin", "status": "active"}
