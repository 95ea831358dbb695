"""The base of the admin's object pages and declared actions
(apps/core/admin_pages.py, apps/core/admin_actions.py), on an admin site whose
only declarations are those of tests/admin_pages_site.py: a declared action
becomes a button and a changelist action that runs the real service, audited
once, with the outcome told to the operator; a declared page gets its URL, its
permission check and a not-found redirect."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.factories import UserFactory
from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.admin_actions import ObjectAction
from apps.core.choices import LifecycleStatus
from apps.jobs.models import Job
from apps.sites.factories import SiteFactory
from apps.sites.models import Site
from tests.admin_pages_site import LOCKED_SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.admin_pages_site")]


def signed_in(*codenames, **extra) -> Client:
    user = UserFactory(**extra)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator():
    return signed_in("view_site", "change_site", "delete_site", "view_job")


@pytest.fixture
def failed_site():
    return SiteFactory(status=LifecycleStatus.FAILED)


def change_url(site):
    return reverse("admin:sites_site_change", args=(site.pk,))


def page_url(site, name="reset_with_reason", object_id=None):
    return reverse(f"admin:sites_site_{name}", args=(object_id or site.pk,))


def press(client, site, action):
    """What the button on the site's page sends."""
    return client.post(reverse("admin:sites_site_changelist"), {
        "action": action, "index": 0, "_selected_action": str(site.pk), "_return_to_object": "1",
    })


def messages_after(client, response) -> list[str]:
    return [str(message) for message in client.get(response["Location"]).context["messages"]]


def test_a_declared_action_is_a_button_that_runs_the_service_and_says_what_happened(operator, failed_site):
    page = operator.get(change_url(failed_site)).content.decode()
    assert 'value="reset_site"' in page and "Reset this site</button>" in page
    # A page's button leads to the page's own URL.
    assert 'value="open_reset_with_reason"' in page and "Reset with a reason</button>" in page
    assert press(operator, failed_site, "open_reset_with_reason")["Location"] == page_url(failed_site)

    response = press(operator, failed_site, "reset_site")
    assert response.status_code == 302 and response["Location"] == change_url(failed_site)
    assert f"Site {failed_site}: back to active." in messages_after(operator, response)
    failed_site.refresh_from_db()
    assert failed_site.status == LifecycleStatus.ACTIVE
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.result, entry.resource_id, entry.details["via"]) == (
        "site.reset", AuditResult.SUCCEEDED, str(failed_site.pk), "admin")

    # Active now: the button is not offered, and pressed anyway the service refuses, audited once more.
    assert 'value="reset_site"' not in operator.get(change_url(failed_site)).content.decode()
    response = press(operator, failed_site, "reset_site")
    assert response["Location"] == change_url(failed_site)
    assert any("not failed" in text for text in messages_after(operator, response))
    refused = AuditEntry.objects.exclude(pk=entry.pk).get()
    assert (refused.result, refused.details["code"]) == (AuditResult.FAILED, "resource_not_failed")


def test_an_action_that_queues_a_job_leads_to_the_job(operator, site_with_production):
    site, _ = site_with_production
    response = press(operator, site, "delete_site")
    job = Job.objects.get(job_type="site_delete")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:jobs_job_change", args=(job.pk,))
    # (The job's own page is not part of this admin site: the messages are read on the list.)
    listing = operator.get(reverse("admin:sites_site_changelist"))
    assert any("deletion queued as job" in str(text) for text in listing.context["messages"])
    assert AuditEntry.objects.get(action="site.delete").job == job


def test_without_the_permission_there_is_no_button_no_action_and_no_page(failed_site):
    viewer = signed_in("view_site")
    page = viewer.get(change_url(failed_site)).content.decode()
    assert 'value="reset_site"' not in page and "Reset with a reason" not in page
    press(viewer, failed_site, "reset_site")
    failed_site.refresh_from_db()
    assert failed_site.status == LifecycleStatus.FAILED
    assert viewer.get(page_url(failed_site)).status_code == 403
    assert viewer.post(page_url(failed_site), {"reason": "because"}).status_code == 403
    assert not AuditEntry.objects.exists()
    # A page that asks only for the view permission opens.
    assert viewer.get(page_url(failed_site, "summary")).status_code == 200


def test_a_page_refuses_an_object_it_does_not_allow(operator):
    locked = SiteFactory(slug=LOCKED_SLUG, status=LifecycleStatus.FAILED)
    assert operator.get(page_url(locked)).status_code == 403
    assert operator.post(page_url(locked), {"reason": "because"}).status_code == 403
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("object_id", [str(uuid.uuid4()), "not-an-id"])
def test_a_missing_object_redirects_with_a_message(operator, object_id):
    response = operator.get(page_url(None, object_id=object_id))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert any("doesn’t exist" in text for text in messages_after(operator, response))


def test_a_form_page_validates_then_runs_the_service(operator, failed_site):
    url = page_url(failed_site)
    response = operator.get(url)
    assert response.status_code == 200 and 'name="reason"' in response.content.decode()
    assert response.context["title"] == f"Reset {failed_site.slug}"

    response = operator.post(url, {"reason": ""})
    assert response.status_code == 200 and "Please correct" in response.content.decode()
    assert not AuditEntry.objects.exists()

    response = operator.post(url, {"reason": "disk full"})
    assert response.status_code == 200
    assert f"{failed_site}: reset because disk full." in [str(m) for m in response.context["messages"]]
    assert Site.objects.get(pk=failed_site.pk).status == LifecycleStatus.ACTIVE
    assert AuditEntry.objects.get().result == AuditResult.SUCCEEDED


def test_a_page_with_a_label_is_also_a_changelist_action_for_one_object(operator, failed_site):
    changelist = reverse("admin:sites_site_changelist")
    response = operator.post(changelist, {"action": "open_reset_with_reason", "index": 0,
                                          "_selected_action": str(failed_site.pk)})
    assert response.status_code == 302 and response["Location"] == page_url(failed_site)

    other = SiteFactory()
    response = operator.post(changelist, {"action": "open_reset_with_reason", "index": 0,
                                          "_selected_action": [str(failed_site.pk), str(other.pk)]})
    assert any("exactly one" in text for text in messages_after(operator, response))


def test_a_page_answers_only_its_methods(operator, failed_site):
    assert operator.post(page_url(failed_site, "summary")).status_code == 405


def test_a_declaration_names_only_settings_that_exist():
    assert ObjectAction(label="Poke").label == "Poke"
    with pytest.raises(TypeError, match="lable"):
        ObjectAction(lable="Poke")
