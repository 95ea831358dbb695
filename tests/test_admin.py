"""The Django admin as the operator's surface: every page renders, actions go
through the services and are audited, state fields cannot be edited, and an
API token created in the admin is shown once and stored only as a hash."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.factories import UserFactory
from apps.accounts.models import TOKEN_PREFIX, ApiToken, User, hash_token_secret
from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.audit.services import record as audit_record
from apps.backups.factories import BackupFactory
from apps.backups.models import Backup
from apps.core.admin_helpers import CappedCountPaginator
from apps.core.choices import LifecycleStatus
from apps.core.models import PanelSettings
from apps.domains.factories import DomainFactory
from apps.domains.models import Domain
from apps.environments.choices import DriftStatus, EnvironmentType, ReleaseSourceType
from apps.environments.factories import EnvironmentFactory
from apps.environments.models import DriftCheck, Environment, Release
from apps.jobs.admin import LOG_TAIL_LINES
from apps.jobs.choices import JobStatus
from apps.jobs.factories import JobFactory
from apps.jobs.models import Job, JobLogLine
from apps.nodes.models import Node
from apps.sites.models import Site

TOKEN_RE = re.compile(re.escape(TOKEN_PREFIX) + r"[0-9a-f]+_[A-Za-z0-9_-]+")


def url(obj_or_model, view="change", *args):
    opts = obj_or_model._meta
    if view == "change" and not args:
        args = (obj_or_model.pk,)
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def run_action(client, model, action, objects, **extra):
    data = {"action": action, "index": 0, "_selected_action": [str(obj.pk) for obj in objects], **extra}
    return client.post(url(model, "changelist"), data)


def messages_of(response):
    return [str(message) for message in response.context["messages"]] if response.context else []


@pytest.fixture
def superuser(db):
    return UserFactory(email="root@example.test", is_superuser=True)


@pytest.fixture
def admin_client(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def world(superuser, site_with_production, node):
    """One row of every panel model, linked the way the real ones are."""
    site, production = site_with_production
    staging = EnvironmentFactory(
        site=site, node=node, slug="staging", name="Staging", environment_type=EnvironmentType.STAGING,
        source_environment=production,
    )
    release = Release.objects.create(
        environment=production, source_type=ReleaseSourceType.GIT, source_ref="main", directory="20250101T000000"
    )
    drift = DriftCheck.objects.create(environment=production, result=DriftStatus.CLEAN, checksums={"wp_posts": "abc"})
    backup = BackupFactory(environment=production, size_bytes=123456, checksum="sha256:00")
    domain = DomainFactory(environment=production, is_primary=True)
    job = JobFactory(site=site, environment=production, node=node, status=JobStatus.FAILED,
                     error_code="remote_step_failed", error_message="Step 3 failed: disk full.")
    for seq, message in enumerate(["first step", "second step", "third step"], start=1):
        JobLogLine.objects.create(job=job, seq=seq, message=message)
    entry = audit_record(user=superuser, action="site.reset", resource=site, result=AuditResult.SUCCEEDED)
    issued = ApiToken.objects.create(user=superuser, name="ci", key_id="abcdef012345", secret_hash="0" * 64)
    settings_row = PanelSettings.load()
    return {
        Site: site, Environment: staging, Release: release, DriftCheck: drift, Backup: backup,
        Domain: domain, Job: job, JobLogLine: job.log_lines.first(), AuditEntry: entry, ApiToken: issued,
        PanelSettings: settings_row, User: superuser, Node: node,
    }


REGISTERED = sorted(
    (model for model in apps.get_models() if admin.site.is_registered(model)),
    key=lambda model: model._meta.label,
)


@pytest.mark.parametrize("model", REGISTERED, ids=[model._meta.label for model in REGISTERED])
def test_every_changelist_renders(admin_client, world, model):
    response = admin_client.get(url(model, "changelist"), follow=True)
    assert response.status_code == 200


def test_every_panel_model_is_registered():
    panel_apps = {"accounts", "nodes", "sites", "environments", "backups", "domains", "jobs", "audit", "core"}
    missing = [
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in panel_apps and not admin.site.is_registered(model)
    ]
    assert missing == []


def test_every_change_page_renders(admin_client, world):
    for model, obj in world.items():
        response = admin_client.get(url(obj))
        assert response.status_code == 200, (model, response.status_code)


def test_changelist_search_accepts_pasted_ids_and_words(admin_client, world):
    job = world[Job]
    response = admin_client.get(url(Job, "changelist"), {"q": str(job.pk)})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [job]
    response = admin_client.get(url(Job, "changelist"), {"q": "remote_step"})
    assert list(response.context["cl"].result_list) == [job]
    response = admin_client.get(url(AuditEntry, "changelist"), {"q": str(world[Site].pk)})
    assert list(response.context["cl"].result_list) == [world[AuditEntry]]


def test_filters_narrow_the_lists(admin_client, world):
    response = admin_client.get(url(Job, "changelist"), {"job_type": "test_noop", "status__exact": "failed"})
    assert list(response.context["cl"].result_list) == [world[Job]]
    response = admin_client.get(url(AuditEntry, "changelist"), {"resource_type": "site"})
    assert list(response.context["cl"].result_list) == [world[AuditEntry]]
    response = admin_client.get(url(AuditEntry, "changelist"), {"resource_type": "node"})
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize("model", [Job, Environment, AuditEntry, Backup, JobLogLine])
def test_list_pages_cost_the_same_queries_for_many_rows(admin_client, world, model):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url(model, "changelist")).status_code == 200
        return len(captured)

    few = queries()
    site, node = world[Site], world[Node]
    for n in range(20):
        environment = EnvironmentFactory(site=site, node=node, slug=f"clone-{n}", environment_type=EnvironmentType.CLONE)
        job = JobFactory(site=site, environment=environment, node=node, status=JobStatus.SUCCEEDED)
        JobLogLine.objects.create(job=job, seq=1, message="done")
        BackupFactory(environment=environment)
        audit_record(user=world[User], action="job.cancel", resource=job, result=AuditResult.FAILED, job=job)
    assert queries() == few


def test_site_page_links_to_its_environments_jobs_and_backups(admin_client, world):
    site = world[Site]
    page = admin_client.get(url(site)).content.decode()
    for model, param in ((Environment, "site"), (Job, "site"), (Backup, "environment__site")):
        assert f'{url(model, "changelist")}?{param}={site.pk}' in page
    environments = admin_client.get(url(Environment, "changelist"), {"site": site.pk})
    assert {env.slug for env in environments.context["cl"].result_list} == {"production", "staging"}
    backups = admin_client.get(url(Backup, "changelist"), {"environment__site": site.pk})
    assert list(backups.context["cl"].result_list) == [world[Backup]]


def test_environment_page_links_to_its_backups_domains_and_jobs(admin_client, world):
    production = world[Site].environments.get(slug="production")
    page = admin_client.get(url(production)).content.decode()
    for model in (Backup, Domain, Job):
        assert f'{url(model, "changelist")}?environment={production.pk}' in page
    jobs = admin_client.get(url(Job, "changelist"), {"environment": production.pk})
    assert list(jobs.context["cl"].result_list) == [world[Job]]


def test_job_page_shows_error_and_log_lines_in_order(admin_client, world):
    job = world[Job]
    JobLogLine.objects.create(job=job, seq=0, message="zeroth step")
    page = admin_client.get(url(job)).content.decode()
    assert "remote_step_failed" in page
    assert "Step 3 failed: disk full." in page
    positions = [page.index(text) for text in ("zeroth step", "first step", "second step", "third step")]
    assert positions == sorted(positions)
    assert 'name="_save"' not in page  # read-only: no save button


def test_a_long_log_shows_its_tail_and_links_to_the_whole(admin_client, world):
    job = JobFactory(site=world[Site], node=world[Node], status=JobStatus.SUCCEEDED)
    JobLogLine.objects.bulk_create(
        JobLogLine(job=job, seq=seq, message=f"<line-{seq:04d}>") for seq in range(1, LOG_TAIL_LINES + 11)
    )
    page = admin_client.get(url(job)).content.decode()
    assert "&lt;line-0010&gt;" not in page
    assert "&lt;line-0011&gt;" in page
    assert f"&lt;line-{LOG_TAIL_LINES + 10:04d}&gt;" in page
    assert f'{url(JobLogLine, "changelist")}?job={job.pk}' in page
    full = admin_client.get(url(JobLogLine, "changelist"), {"job": job.pk})
    assert full.context["cl"].result_count == LOG_TAIL_LINES + 10


def test_state_fields_are_not_form_fields(admin_client, world):
    site = world[Site]
    form = admin_client.get(url(site)).context["adminform"].form
    assert "name" in form.fields
    assert not {"status", "status_reason", "state_version", "slug"} & set(form.fields)
    environment_form = admin_client.get(url(world[Environment])).context["adminform"].form
    assert set(environment_form.fields) == {"name"}


def test_renaming_a_site_bumps_its_version_ignores_status_and_is_audited(admin_client, world):
    site = world[Site]
    version = site.state_version
    response = admin_client.post(
        url(site), {"name": "Renamed", "status": "failed", "_state_version": str(version), **inline_management(site)}
    )
    assert response.status_code == 302, response.content
    site.refresh_from_db()
    assert site.name == "Renamed"
    assert site.status == LifecycleStatus.ACTIVE
    assert site.state_version == version + 1
    entry = AuditEntry.objects.get(action="site.update")
    assert entry.resource_id == str(site.pk)
    assert entry.result == AuditResult.SUCCEEDED


def test_a_stale_form_is_refused(admin_client, world):
    site = world[Site]
    stale = site.state_version
    Site.objects.filter(pk=site.pk).update(state_version=stale + 1)
    response = admin_client.post(
        url(site), {"name": "Overwritten", "_state_version": str(stale), **inline_management(site)}
    )
    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    site.refresh_from_db()
    assert site.name != "Overwritten"


def inline_management(site):
    # The read-only environments inline still posts its management form.
    count = site.environments.count()
    return {
        "environments-TOTAL_FORMS": str(count),
        "environments-INITIAL_FORMS": str(count),
        "environments-MIN_NUM_FORMS": "0",
        "environments-MAX_NUM_FORMS": "1000",
    }


# --- actions -----------------------------------------------------------------


def test_cancel_action_cancels_a_queued_job_and_audits(admin_client, world, superuser):
    queued = JobFactory(site=world[Site], node=world[Node])
    response = run_action(admin_client, Job, "cancel_jobs", [queued])
    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED
    entry = AuditEntry.objects.get(action="job.cancel")
    assert (entry.resource_type, entry.resource_id, entry.result) == ("job", str(queued.pk), AuditResult.SUCCEEDED)
    assert entry.user == superuser
    assert entry.client_address == "127.0.0.1"


def test_cancel_action_asks_a_running_job_to_stop(admin_client, world):
    running = JobFactory(site=world[Site], node=world[Node], status=JobStatus.RUNNING)
    run_action(admin_client, Job, "cancel_jobs", [running])
    running.refresh_from_db()
    assert running.status == JobStatus.RUNNING
    assert running.cancel_requested


def test_cancel_action_on_an_ended_job_shows_the_service_error(admin_client, world):
    ended = world[Job]
    response = run_action(admin_client, Job, "cancel_jobs", [ended], _return_to_object="1")
    assert response.status_code == 302
    assert response["Location"] == url(ended)
    page = admin_client.get(response["Location"])
    assert any("already ended" in text for text in messages_of(page))
    ended.refresh_from_db()
    assert ended.status == JobStatus.FAILED
    assert AuditEntry.objects.get(action="job.cancel").result == AuditResult.FAILED


def test_cancel_button_is_offered_only_while_the_job_can_be_cancelled(admin_client, world):
    queued = JobFactory(site=world[Site], node=world[Node])
    assert 'value="cancel_jobs"' in admin_client.get(url(queued)).content.decode()
    assert 'value="cancel_jobs"' not in admin_client.get(url(world[Job])).content.decode()


def test_reset_action_brings_a_failed_site_back_and_audits(admin_client, world):
    site = world[Site]
    Site.objects.filter(pk=site.pk).update(status=LifecycleStatus.FAILED, status_reason="site_create failed")
    page = admin_client.get(url(site)).content.decode()
    assert 'value="reset_failed_state"' in page
    response = run_action(admin_client, Site, "reset_failed_state", [site], _return_to_object="1")
    assert response["Location"] == url(site)
    site.refresh_from_db()
    assert site.status == LifecycleStatus.ACTIVE
    assert site.status_reason == ""
    entry = AuditEntry.objects.get(action="site.reset", details__via="admin")
    assert entry.result == AuditResult.SUCCEEDED


def test_reset_action_refuses_while_a_job_runs_and_says_why(admin_client, world):
    site = world[Site]
    Site.objects.filter(pk=site.pk).update(status=LifecycleStatus.FAILED)
    JobFactory(site=site, node=world[Node], status=JobStatus.RUNNING)
    response = run_action(admin_client, Site, "reset_failed_state", [site])
    page = admin_client.get(response["Location"])
    assert any("cannot be reset yet" in text for text in messages_of(page))
    site.refresh_from_db()
    assert site.status == LifecycleStatus.FAILED
    entry = AuditEntry.objects.get(action="site.reset", details__via="admin")
    assert entry.result == AuditResult.FAILED
    assert entry.details["code"] == "reset_validation_failed"


def test_reset_action_on_an_active_site_is_refused(admin_client, world):
    response = run_action(admin_client, Site, "reset_failed_state", [world[Site]])
    page = admin_client.get(response["Location"])
    assert any("not failed" in text for text in messages_of(page))


def test_reset_action_brings_a_failed_environment_back_and_audits(admin_client, world):
    environment = world[Environment]
    Environment.objects.filter(pk=environment.pk).update(status=LifecycleStatus.FAILED)
    run_action(admin_client, Environment, "reset_failed_state", [environment])
    environment.refresh_from_db()
    assert environment.status == LifecycleStatus.ACTIVE
    entry = AuditEntry.objects.get(action="environment.reset")
    assert (entry.resource_id, entry.result) == (str(environment.pk), AuditResult.SUCCEEDED)


# --- API tokens ----------------------------------------------------------------


def test_token_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client, superuser, db):
    response = admin_client.post(url(ApiToken, "add"), {"user": str(superuser.pk), "name": "deploy bot"})
    assert response.status_code == 200
    page = response.content.decode()
    tokens = TOKEN_RE.findall(page)
    assert len(tokens) == 1, "the token appears exactly once"
    plaintext = tokens[0]

    token = ApiToken.objects.get(name="deploy bot")
    key_id, _, secret = plaintext[len(TOKEN_PREFIX):].partition("_")
    assert token.key_id == key_id
    assert token.secret_hash == hash_token_secret(secret)
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(secret in value for value in stored)

    # Not kept anywhere the browser would get it again.
    assert "messages" not in response.cookies
    for later in (url(ApiToken, "changelist"), url(token)):
        assert secret not in admin_client.get(later).content.decode()

    api = Client().get("/api/sites", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.status_code == 200
    assert AuditEntry.objects.filter(action="apitoken.create", resource_id=str(token.pk)).exists()


def test_token_for_a_past_expiry_is_refused(admin_client, superuser):
    response = admin_client.post(
        url(ApiToken, "add"), {"user": str(superuser.pk), "name": "old", "expires_at_0": "2000-01-01", "expires_at_1": "00:00"}
    )
    assert response.status_code == 200
    assert "must lie in the future" in response.content.decode()
    assert not ApiToken.objects.filter(name="old").exists()


def test_revoke_action_revokes_and_audits(admin_client, superuser):
    from apps.accounts.services import create_api_token

    issued = create_api_token(superuser, "to revoke")
    run_action(admin_client, ApiToken, "revoke_tokens", [issued.token])
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert Client().get("/api/sites", HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}").status_code == 401
    assert AuditEntry.objects.get(action="apitoken.revoke").result == AuditResult.SUCCEEDED


# --- read-only tables -----------------------------------------------------------


@pytest.mark.parametrize("model", [AuditEntry, Job, JobLogLine])
def test_audit_and_jobs_cannot_be_added_changed_or_deleted(admin_client, world, model):
    obj = world[model]
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert admin_client.post(url(obj), {}).status_code == 403
    changelist = admin_client.get(url(model, "changelist"))
    assert "delete_selected" not in changelist.content.decode()


def test_big_tables_use_the_capped_count(admin_client, world):
    for model in (Job, JobLogLine, AuditEntry):
        model_admin = admin.site.get_model_admin(model)
        assert model_admin.show_full_result_count is False
        assert issubclass(model_admin.paginator, CappedCountPaginator)

    class TwoAtMost(CappedCountPaginator):
        cap = 2

    assert JobLogLine.objects.count() == 3
    assert TwoAtMost(JobLogLine.objects.all(), 1).count == 2


# --- users and settings ------------------------------------------------------------


def test_creating_a_user_by_email_in_the_admin(admin_client):
    response = admin_client.post(
        url(User, "add"),
        {"email": "New.Person@Example.test", "full_name": "New Person", "is_staff": "on",
         "usable_password": "true", "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
    )
    assert response.status_code == 302, response.content.decode()
    user = User.objects.get(email="new.person@example.test")
    assert user.is_staff and user.check_password("a long passphrase 42")
    assert AuditEntry.objects.filter(action="user.create", resource_id=str(user.pk)).exists()


def test_panel_settings_is_a_singleton_that_never_shows_the_dns_secret(admin_client, db):
    response = admin_client.get(url(PanelSettings, "changelist"))
    assert response.status_code == 302
    assert response["Location"] == url(PanelSettings.load())
    response = admin_client.post(
        url(PanelSettings.load()),
        {"control_plane_domain": "Panel.Example.com", "preview_domain": "preview.example.com",
         "dns01_provider": "cloudflare", "new_dns01_credentials": "token-s3cr3t-value"},
    )
    assert response.status_code == 302, response.content.decode()
    row = PanelSettings.load()
    assert row.control_plane_domain == "panel.example.com"
    assert row.dns01_credentials == "token-s3cr3t-value"
    with connection.cursor() as cursor:
        cursor.execute("SELECT dns01_credentials FROM core_panelsettings")
        (stored,) = cursor.fetchone()
    assert stored and "s3cr3t" not in stored
    page = admin_client.get(url(row)).content.decode()
    assert "s3cr3t" not in page
    assert "stored (encrypted)" in page
    entry = AuditEntry.objects.get(action="panelsettings.update")
    assert "s3cr3t" not in str(entry.details)


def test_panel_settings_refuses_a_bad_hostname(admin_client, db):
    response = admin_client.post(url(PanelSettings.load()), {"preview_domain": "bad host; rm -rf /"})
    assert response.status_code == 200
    assert PanelSettings.load().preview_domain == ""
