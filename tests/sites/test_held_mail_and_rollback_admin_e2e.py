"""The admin on the real local node: an operator reads the mail a staging
environment held back, and rolls an environment back to an earlier healthy
release (from the release, or from the environment's release list); a
refused rollback says why and queues nothing."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.factories import UserFactory
from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.errors import ApiError
from apps.environments import held_mail, naming, node_ops
from apps.environments.models import Environment, Release
from apps.jobs import runner
from apps.jobs.errors import JobError
from apps.jobs.models import Job
from apps.nodes import ssh
from tests.sites.test_deploy_e2e import BREAKS_PAGES, commit, deploy, repository  # noqa: F401  (fixture)
from tests.sites.test_environment_clone_e2e import wp_helper
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(UserFactory(email="operator@example.test", is_superuser=True))
    return client


def admin_url(obj_or_model, view="change", *args):
    opts = obj_or_model._meta
    if view == "change" and not args:
        args = (obj_or_model.pk,)
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def run_action(client, model, action, objects, **extra):
    data = {"action": action, "index": 0, "_selected_action": [str(obj.pk) for obj in objects], **extra}
    return client.post(admin_url(model, "changelist"), data)


def page_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def delete_site(api_client, site):
    response = api_client.delete(f"/api/sites/{site.id}")
    if response.status_code == 202:
        runner.run_job(response.json()["job_id"])


# --- held mail -----------------------------------------------------------------


def test_held_mail_page_shows_what_staging_held_and_production_none(api_client, local_node, staff_client):
    site, production = create_site(api_client, "Iota Inn", "iota")
    try:
        response = api_client.post(
            f"/api/sites/{site.id}/environments",
            {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"},
            format="json",
        )
        assert response.status_code == 202, response.content
        assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
        staging = Environment.objects.get(site=site, slug="staging")
        _held_mail_pages(staff_client, staging, production)
        # The same list through the API.
        response = api_client.get(f"/api/environments/{staging.id}/held-mail", {"limit": 2})
        assert response.status_code == 200, response.content
        assert [(m["subject"], m["recipients"], m["excerpt"]) for m in response.json()] == [
            ("Your order 1002", "buyer2@example.com", "Thanks for buying"),
            ("Your order 1001", "buyer1@example.com", "Thanks for buying"),
        ]
        for bad in ("x", "0", "51"):
            response = api_client.get(f"/api/environments/{staging.id}/held-mail", {"limit": bad})
            assert response.status_code == 400 and response.json()["code"] == "bad_request"
        _held_mail_refusals(staging)
    finally:
        delete_site(api_client, site)


def _held_mail_pages(client, staging, production):
    page_url = admin_url(Environment, "held_mail", staging.pk)
    # Nothing held yet: the page says so.
    response = client.get(page_url)
    assert response.status_code == 200
    assert "No held mail." in response.content.decode()

    for number in range(3):
        answer = wp_helper(staging, {"command": "send-test-mail", "to": f"buyer{number}@example.com",
                                     "subject": f"Your order {1000 + number}", "message": "Thanks for buying"})
        assert answer["sent"] is False

    # The button on the environment's page leads there.
    change_page = client.get(admin_url(staging)).content.decode()
    assert 'value="show_held_mail"' in change_page and "Held mail" in change_page
    response = run_action(client, Environment, "show_held_mail", [staging], _return_to_object="1")
    assert response.status_code == 302 and response["Location"] == page_url

    response = client.get(page_url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Your order 1002" in page and "buyer2@example.com" in page
    assert "Your order 1000" in page and "buyer0@example.com" in page
    assert page.index("Your order 1002") < page.index("Your order 1001") < page.index("Your order 1000")
    mails = response.context["mails"]
    assert [mail["subject"] for mail in mails] == ["Your order 1002", "Your order 1001", "Your order 1000"]
    assert mails[0]["recipients"] == "buyer2@example.com" and mails[0]["time"] is not None
    assert mails[0]["excerpt"] == "Thanks for buying" and "Thanks for buying" in page

    # The service itself: newest first, as many as asked for.
    newest = held_mail.held_mail(staging.pk, limit=1)
    assert [mail["subject"] for mail in newest] == ["Your order 1002"]

    # Production holds nothing; its page works and offers no button.
    assert 'value="show_held_mail"' not in client.get(admin_url(production)).content.decode()
    response = client.get(admin_url(Environment, "held_mail", production.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "No held mail." in page and "Production sends its mail" in page
    assert "Your order" not in page
    assert held_mail.held_mail(production.pk) == []


def _held_mail_refusals(staging):
    with pytest.raises(ApiError) as refused:
        held_mail.held_mail(staging.pk, limit=0)
    assert refused.value.code == "bad_request"
    with pytest.raises(ApiError) as refused:
        held_mail.held_mail(staging.pk, limit=held_mail.HELD_MAIL_MAX + 1)
    assert refused.value.code == "bad_request"
    with pytest.raises(ApiError) as refused:
        held_mail.held_mail("00000000-0000-0000-0000-000000000000")
    assert refused.value.code == "not_found"

    # The helper validates its own parameters too.
    with pytest.raises(JobError) as failed:
        node_ops.held_mail(staging, "all", timeout=30)
    assert failed.value.code == "wordpress_failed" and "limit" in failed.value.message

    Environment.objects.filter(pk=staging.pk).update(status="deploying")
    try:
        with pytest.raises(ApiError) as refused:
            held_mail.held_mail(staging.pk)
        assert refused.value.code == "environment_not_active"
    finally:
        Environment.objects.filter(pk=staging.pk).update(status="active")

    # A node that does not answer: the page still renders, with the reason.
    node = staging.node
    port = node.ssh_port
    ssh.close_all()
    type(node).objects.filter(pk=node.pk).update(ssh_port=1)
    try:
        with pytest.raises(ApiError) as refused:
            held_mail.held_mail(staging.pk)
        assert refused.value.code == "node_unreachable"
    finally:
        type(node).objects.filter(pk=node.pk).update(ssh_port=port)
        ssh.close_all()


# --- rollback ------------------------------------------------------------------


def rollback_jobs(environment):
    return Job.objects.filter(environment=environment, job_type="release_rollback")


def live_directory(environment) -> str:
    return (Path(naming.root(environment)) / "current").resolve().name


def test_admin_rolls_back_to_an_earlier_healthy_release(api_client, local_node, staff_client, repository):  # noqa: F811
    site, production = create_site(api_client, "Kappa Kiosk", "kappa")
    try:
        _rollback_through_the_admin(api_client, staff_client, production, repository)
    finally:
        delete_site(api_client, site)


def _rollback_through_the_admin(api_client, client, production, repository):
    job = deploy(api_client, production, f"{repository}#v1")
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    first = production.current_release
    commit(repository, "mu-plugins/second.php", "<?php\n// the second release\n", "v2")
    job = deploy(api_client, production, f"{repository}#v2")
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    second = production.current_release
    assert second != first and live_directory(production) == second.directory

    # The release's page offers the button; the action asks first.
    assert 'value="rollback_to_release"' in client.get(admin_url(first)).content.decode()
    assert 'value="rollback_to_release"' not in client.get(admin_url(second)).content.decode()  # live already
    response = run_action(client, Release, "rollback_to_release", [first], _return_to_object="1")
    assert response.status_code == 200 and "Yes, roll back" in response.content.decode()
    assert not rollback_jobs(production).exists()

    response = run_action(client, Release, "rollback_to_release", [first], _return_to_object="1", post="yes")
    job = rollback_jobs(production).get()
    assert response.status_code == 302 and response["Location"] == admin_url(job)
    assert job.payload["release_id"] == str(first.pk)
    entry = AuditEntry.objects.get(action="environment.rollback", job=job)
    assert entry.result == AuditResult.ACCEPTED and entry.details["via"] == "admin"
    assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    assert production.current_release == first and production.status == "active"
    assert live_directory(production) == first.directory
    assert http_get(production.preview_url)[0] == 200

    # A release that failed its health check is refused, from the release and from the list.
    commit(repository, "mu-plugins/breaks-pages.php", BREAKS_PAGES, "v3")
    job = deploy(api_client, production, f"{repository}#v3")
    assert (job.status, job.error_code) == ("failed", "health_check_failed"), job_log(job.pk)
    broken = production.releases.get(directory=job.result["release"])
    assert broken.health == "unhealthy"
    production.refresh_from_db()
    assert production.current_release == first
    assert 'value="rollback_to_release"' not in client.get(admin_url(broken)).content.decode()
    before = rollback_jobs(production).count()
    response = run_action(client, Release, "rollback_to_release", [broken], _return_to_object="1", post="yes")
    assert response.status_code == 302 and response["Location"] == admin_url(broken)
    response = client.get(response["Location"])
    assert any("Only a healthy release can be rolled back to." in text for text in page_messages(response))
    assert rollback_jobs(production).count() == before
    refused = AuditEntry.objects.filter(action="environment.rollback", result=AuditResult.FAILED).get()
    assert refused.details["code"] == "conflict"

    # The environment's release list: every release, the live one marked, a button on the healthy others.
    releases_url = admin_url(Environment, "releases", production.pk)
    change_page = client.get(admin_url(production)).content.decode()
    assert 'value="show_releases"' in change_page
    assert run_action(client, Environment, "show_releases", [production])["Location"] == releases_url
    response = client.get(releases_url)
    assert response.status_code == 200
    page = response.content.decode()
    for release in (first, second, broken):
        assert release.directory in page
    assert "live now" in page
    assert f'value="{second.pk}"' in page and f'value="{broken.pk}"' not in page and f'value="{first.pk}"' not in page

    response = client.post(releases_url, {"release_id": str(broken.pk)}, follow=True)
    assert any("Only a healthy release can be rolled back to." in text for text in page_messages(response))
    assert response.redirect_chain[-1][0] == releases_url
    assert rollback_jobs(production).count() == before

    # Not while the environment is busy.
    Environment.objects.filter(pk=production.pk).update(status="deploying")
    try:
        response = client.post(releases_url, {"release_id": str(second.pk)}, follow=True)
        assert any("not active" in text for text in page_messages(response))
        assert rollback_jobs(production).count() == before
    finally:
        Environment.objects.filter(pk=production.pk).update(status="active")

    # An unknown release id changes nothing either.
    response = client.post(releases_url, {"release_id": "not-a-release"}, follow=True)
    assert any("no longer exists" in text for text in page_messages(response))
    assert rollback_jobs(production).count() == before

    # Forward again to the second release from the list.
    response = client.post(releases_url, {"release_id": str(second.pk)})
    job = rollback_jobs(production).order_by("-created_at").first()
    assert response.status_code == 302 and response["Location"] == admin_url(job)
    assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    assert production.current_release == second and production.status == "active"
    assert live_directory(production) == second.directory

    # Only one release can be picked.
    before = rollback_jobs(production).count()
    response = run_action(client, Release, "rollback_to_release", [first, second], post="yes")
    assert response.status_code == 302
    assert any("exactly one release" in text for text in page_messages(client.get(response["Location"])))
    assert rollback_jobs(production).count() == before
