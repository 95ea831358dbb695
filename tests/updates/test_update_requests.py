"""Asking for an update (API, management command, admin): bad input 400,
unknown environment 404, refused with 409 without backup storage (an update
always starts with a database backup) or on a busy environment, queued
otherwise; and the page comparison that decides whether an update broke a page."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.audit.models import AuditEntry
from apps.core.choices import LifecycleStatus
from apps.environments import updates
from apps.environments.models import Release
from apps.jobs.models import Job

pytestmark = pytest.mark.django_db


def updates_url(environment) -> str:
    return f"/api/environments/{environment.pk}/updates"


@pytest.fixture
def live(site_with_production):
    site, production = site_with_production
    release = Release.objects.create(environment=production, source_type="core", source_ref="wordpress-core",
                                     directory="20261204T100000Z")
    type(production).objects.filter(pk=production.pk).update(current_release=release)
    production.refresh_from_db()
    return site, production


def test_update_refused_without_backup_storage(api_client, live):
    _, production = live
    response = api_client.post(updates_url(production), {"scope": "all"}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "backup_storage_not_configured" and "PRESSLUFT_BACKUP_S3_" in body["message"]
    assert not Job.objects.exists()
    with pytest.raises(CommandError, match="backup_storage_not_configured"):
        call_command("update_environment", live[0].slug, production.slug, "--scope", "plugins")
    assert not Job.objects.exists()


@pytest.mark.parametrize("body", [{"scope": "everything"}, {"scope": 1}, {}, {"scope": "all", "extra": True},
                                  ["all"], {"scope": None}])
def test_bad_request_is_400_and_queues_nothing(api_client, live, backup_storage, body):
    _, production = live
    response = api_client.post(updates_url(production), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"
    assert not Job.objects.exists()


def test_unknown_environment_is_404(api_client, backup_storage):
    response = api_client.post("/api/environments/00000000-0000-4000-8000-000000000000/updates", {"scope": "all"},
                               format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_busy_environment_is_409(api_client, live, backup_storage):
    _, production = live
    type(production).objects.filter(pk=production.pk).update(status=LifecycleStatus.DEPLOYING)
    response = api_client.post(updates_url(production), {"scope": "core"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "environment_not_active"
    assert not Job.objects.exists()


@pytest.mark.parametrize("scope", ["core", "plugins", "themes", "all"])
def test_update_is_queued_with_a_release_name(api_client, live, backup_storage, scope):
    _, production = live
    response = api_client.post(updates_url(production), {"scope": scope}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.job_type, job.environment_id, job.payload["scope"]) == ("env_update", production.pk, scope)
    assert job.payload["release"] > production.current_release.directory
    assert AuditEntry.objects.get(action="environment.update").job_id == job.pk


def test_command_queues_an_update(live, backup_storage, capsys):
    site, production = live
    call_command("update_environment", site.slug, production.slug, "--scope", "themes")
    job = Job.objects.get(job_type="env_update")
    assert job.payload["scope"] == "themes" and str(job.pk) in capsys.readouterr().out
    assert AuditEntry.objects.get(action="environment.update").actor == "manage.py update_environment"


def test_admin_update_button_queues_the_scope(live, backup_storage):
    from apps.accounts.factories import UserFactory

    _, production = live
    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    response = client.post(f"/admin/environments/environment/{production.pk}/updates/", {"scope": "plugins"})
    assert response.status_code == 302
    job = Job.objects.get(job_type="env_update")
    assert job.payload["scope"] == "plugins" and response["Location"].endswith(f"/{job.pk}/change/")


# --- the page comparison ---------------------------------------------------------------

ARTICLE = "<p>" + "Our lamps light up long winter evenings in every room of the house. " * 4 + "</p>"


def page(html: str, status: int = 200, label: str = "home page"):
    return updates.read_page(label, "/", status, html.encode())


def test_same_page_is_fine_and_a_small_change_is_only_a_note():
    before = page(f"<html><head><title>Lamps</title><script>var x = 1;</script></head><body><main>{ARTICLE}"
                  "</main><footer>v1</footer></body></html>")
    after = page(f"<html><head><title>Lamps</title></head><body><main>{ARTICLE}<p>new</p></main></body></html>")
    problems, notes = updates.compare(before, after)
    assert problems == [] and notes and "var x" not in before.text


def test_a_broken_or_emptied_page_is_a_problem():
    before = page(f"<html><head><title>Lamps</title></head><body><main>{ARTICLE}</main></body></html>")
    assert updates.compare(before, page("<html><body>Fatal error</body></html>", status=500))[0][0].startswith(
        "home page (/) broke: answered 500")
    emptied = page("<html><head><title>Lamps</title></head><body><main><p>v3</p></main></body></html>")
    assert "lost most of its content" in updates.compare(before, emptied)[0][0]
    untitled = page(f"<html><head><title></title></head><body><main>{ARTICLE}</main></body></html>")
    assert "lost its title" in updates.compare(before, untitled)[0][0]


def test_a_problem_names_the_component_it_points_at():
    updated = [{"type": "plugin", "key": "shop/shop.php", "name": "Shop", "from": "1.0", "to": "2.0"},
               {"type": "theme", "key": "lark", "name": "Lark", "from": "1.0", "to": "1.1"}]
    fatal = "health check: 1 new PHP fatal error(s), first: Uncaught Error in /var/www/x/releases/r/wp-content/plugins/shop/x.php:3"
    assert updates.blame(fatal, updated).startswith("plugin Shop 1.0 → 2.0 broke it")
    assert "after updating plugin Shop 1.0 → 2.0, theme Lark 1.0 → 1.1" in updates.blame("home page lost most", updated)


def test_admin_updates_page_says_why_it_shows_nothing(live):
    """The node does not answer (this node is not reachable) and backups are off: the page says both."""
    from apps.accounts.factories import UserFactory
    from apps.backups import storage

    _, production = live
    client = Client()
    client.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    response = client.get(f"/admin/environments/environment/{production.pk}/updates/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Could not reach node" in page and storage.NOT_CONFIGURED_HINT.split(":")[0] in page
    assert "Update all" not in page
    # The environment's page has its button.
    assert 'value="show_updates"' in client.get(f"/admin/environments/environment/{production.pk}/change/").content.decode()
