"""The Django admin as the operator's surface: every page renders, actions go
through the services and are audited, state fields cannot be edited, and an
API token created in the admin is shown once and stored only as a hash."""

import http.client
import re
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

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
from apps.environments.models import DeployArchive, DriftBaseline, DriftCheck, Environment, Release
from apps.jobs.admin import LOG_TAIL_LINES
from apps.jobs.choices import JobStatus
from apps.jobs.factories import JobFactory
from apps.jobs.models import Job, JobLogLine
from apps.nodes.choices import NodeStatus
from apps.nodes.factories import NodeFactory
from apps.nodes.models import Node
from apps.nodes.ssh import fingerprint
from apps.sites.models import Site
from tests.nodes.fixtures import local_node, node_sshd, panel_key  # noqa: F401  (the real node, for one test)

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
    baseline = DriftBaseline.objects.create(environment=staging, measured_environment=production, origin="clone",
                                            checksums={"tables": {}, "code": {}}, taken_at=timezone.now())
    drift = DriftCheck.objects.create(
        environment=staging, measured_environment=production, baseline=baseline, result=DriftStatus.DRIFTED,
        checksums={"tables": {}},
        report={"result": "drifted", "blocking_tables": ["wp_options"], "code_changes": 1,
                "tables": [{"table": "wp_options", "change": "changed", "kind": "overwritten", "blocking": True,
                            "rows_baseline": 5, "rows_now": 5, "rows_added": 0, "changed_after_key": 3},
                           {"table": "wp_comments", "change": "changed", "kind": "protected", "blocking": False,
                            "rows_baseline": 1, "rows_now": 2, "rows_added": 1}],
                "code": {"counts": {"added": 0, "changed": 1, "removed": 0}, "added": [], "changed": ["index.php"],
                         "removed": []},
                "uploads": {"counts": {"added": 3, "changed": 0, "removed": 0}, "added": ["a.jpg"], "changed": [],
                            "removed": []}},
    )
    Environment.objects.filter(pk=staging.pk).update(last_drift_check=drift, drift_status=DriftStatus.DRIFTED)
    archive = DeployArchive.objects.create(environment=production, filename="theme.tar.gz", archive_format="tar",
                                           layout="wp-content", size_bytes=1024, unpacked_bytes=4096, sha256="0" * 64)
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
        Site: site, Environment: staging, Release: release, DriftCheck: drift, DriftBaseline: baseline, Backup: backup, DeployArchive: archive,
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
    for model, param in ((Environment, "site"), (Job, "site"), (Backup, "site_id")):
        assert f'{url(model, "changelist")}?{param}={site.pk}' in page
    environments = admin_client.get(url(Environment, "changelist"), {"site": site.pk})
    assert {env.slug for env in environments.context["cl"].result_list} == {"production", "staging"}
    backups = admin_client.get(url(Backup, "changelist"), {"site_id": site.pk})
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


def test_a_running_jobs_page_follows_its_log_live(admin_client, world):
    job = JobFactory(site=world[Site], node=world[Node], status=JobStatus.RUNNING)
    JobLogLine.objects.create(job=job, seq=1, message="fetch v1")
    page = admin_client.get(url(job)).content.decode()
    tail_url = f"/admin/jobs/job/{job.pk}/log-tail/"
    assert 'id="pressluft-live-log"' in page and f'data-url="{tail_url}"' in page and 'data-after="1"' in page
    assert "pressluft/live-log.js" in page

    JobLogLine.objects.create(job=job, seq=2, level="step", message="build <release>")
    answer = admin_client.get(tail_url, {"after": 1}).json()
    assert answer == {"status": "running", "finished": False,
                      "lines": [{"seq": 2, "level": "step", "message": "build <release>"}]}
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert admin_client.get(tail_url, {"after": 2}).json() == {"status": "succeeded", "finished": True, "lines": []}
    assert 'id="pressluft-live-log"' not in admin_client.get(url(job)).content.decode()

    assert Client().get(tail_url).status_code == 302  # to the login page
    assert admin_client.get("/admin/jobs/job/00000000-0000-4000-8000-000000000000/log-tail/").status_code == 404


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
         "dns01_provider": "rfc2136", "dns01_rfc2136_server": "192.0.2.53", "dns01_rfc2136_key_name": "acme-key",
         "dns01_rfc2136_algorithm": "hmac-sha256", "new_dns01_rfc2136_secret": "c2VjcmV0LXMzY3IzdC12YWx1ZQ=="},
    )
    assert response.status_code == 302, response.content.decode()
    row = PanelSettings.load()
    assert row.control_plane_domain == "panel.example.com"
    assert row.dns01_rfc2136_secret == "c2VjcmV0LXMzY3IzdC12YWx1ZQ=="
    assert row.dns01_rfc2136_algorithm == "HMAC-SHA256"
    with connection.cursor() as cursor:
        cursor.execute("SELECT dns01_rfc2136_secret FROM core_panelsettings")
        (stored,) = cursor.fetchone()
    assert stored and "c2VjcmV0LXMzY3IzdC12YWx1ZQ" not in stored
    page = admin_client.get(url(row)).content.decode()
    assert "c2VjcmV0LXMzY3IzdC12YWx1ZQ" not in page
    assert "stored (encrypted)" in page
    entry = AuditEntry.objects.get(action="panelsettings.update")
    assert "c2VjcmV0LXMzY3IzdC12YWx1ZQ" not in str(entry.details)


def test_panel_settings_refuses_a_bad_hostname(admin_client, db):
    response = admin_client.post(url(PanelSettings.load()), {"preview_domain": "bad host; rm -rf /"})
    assert response.status_code == 200
    assert PanelSettings.load().preview_domain == ""


def test_panel_settings_refuses_a_preview_domain_without_its_credentials(admin_client, db):
    response = admin_client.post(url(PanelSettings.load()), {"preview_domain": "preview.example.com",
                                                              "dns01_provider": "rfc2136"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The rfc2136 provider needs this." in page
    row = PanelSettings.load()
    assert (row.preview_domain, row.dns01_provider) == ("", "")


def test_panel_settings_page_sets_the_acme_and_dns_settings(admin_client, db, settings):
    settings.ACME_FROM_ENVIRONMENT = {"email": "env@example.com"}
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    page = admin_client.get(url(PanelSettings.load())).content.decode()
    assert staging in page and "PRESSLUFT_ACME_EMAIL" in page  # the documented choice, and who wins
    response = admin_client.post(url(PanelSettings.load()), {"acme_directory_url": staging,
                                                             "dns_resolvers": "192.0.2.53, 127.0.0.1:5353"})
    assert response.status_code == 302, response.content.decode()
    row = PanelSettings.load()
    assert (row.acme_directory_url, row.dns_resolvers) == (staging, "192.0.2.53,127.0.0.1:5353")
    response = admin_client.post(url(row), {"acme_directory_url": "http://acme.example.com/directory",
                                            "dns_resolvers": "ns1.example.com"})
    assert response.status_code == 200
    assert "https URL" in response.content.decode()
    assert PanelSettings.load().dns_resolvers == "192.0.2.53,127.0.0.1:5353"


# --- sites: add and delete through the services ------------------------------------


def test_site_add_form_renders_with_the_active_nodes_only(admin_client, node):
    NodeFactory(name="offline", status=NodeStatus.UNREACHABLE)
    response = admin_client.get(url(Site, "add"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="slug"' in page and 'name="name"' in page
    choices = [label for _, label in response.context["form"].fields["node"].choices]
    assert node.name in choices
    assert "offline" not in choices
    changelist = admin_client.get(url(Site, "changelist")).content.decode()
    assert url(Site, "add") in changelist  # the "Add site" button


@pytest.mark.parametrize(
    "name, slug, field, text",
    [
        ("Shop", "Bad_Slug", "slug", "Use lower-case letters"),
        ("Shop", "-shop", "slug", "Use lower-case letters"),
        ("Shop", "a" * 64, "slug", "at most 63"),
        ("   ", "shop", "name", "may not be blank"),
        ("", "shop", "name", "required"),
    ],
)
def test_site_add_form_validates_like_the_api(admin_client, node, name, slug, field, text):
    response = admin_client.post(url(Site, "add"), {"name": name, "slug": slug})
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert text in errors, response.context["form"].errors
    assert "Please correct" in response.content.decode()
    assert not Site.objects.exists()
    assert not Job.objects.exists()


def test_site_add_form_creates_the_site_its_environment_and_a_queued_job(admin_client, node, superuser):
    response = admin_client.post(url(Site, "add"), {"name": "Alpha Bakery", "slug": "alpha", "node": str(node.pk)})
    assert response.status_code == 302, response.content.decode()
    site = Site.objects.get(slug="alpha")
    assert (site.name, site.status) == ("Alpha Bakery", LifecycleStatus.DEPLOYING)
    production = site.environments.get()
    assert (production.environment_type, production.node, production.status) == (
        EnvironmentType.PRODUCTION, node, LifecycleStatus.DEPLOYING)
    job = Job.objects.get()
    assert (job.job_type, job.status, job.site, job.environment) == ("site_create", JobStatus.QUEUED, site, production)
    assert response["Location"] == url(job)  # the operator watches the job's log
    page = admin_client.get(response["Location"])
    assert any("is being created" in text for text in messages_of(page))
    entry = AuditEntry.objects.get(action="site.create")
    assert (entry.resource_id, entry.result, entry.job, entry.user) == (
        str(site.pk), AuditResult.ACCEPTED, job, superuser)


def test_site_add_form_defaults_to_the_only_active_node(admin_client, node):
    response = admin_client.post(url(Site, "add"), {"name": "Beta", "slug": "beta"})
    assert response.status_code == 302
    assert Site.objects.get(slug="beta").environments.get().node == node


def test_site_add_form_reports_a_duplicate_slug_and_no_active_node(admin_client, db):
    response = admin_client.post(url(Site, "add"), {"name": "Alpha", "slug": "alpha"})
    assert response.status_code == 200
    assert any("No active node" in error for error in response.context["form"].non_field_errors())
    assert AuditEntry.objects.get(action="site.create").result == AuditResult.FAILED

    NodeFactory()
    assert admin_client.post(url(Site, "add"), {"name": "Alpha", "slug": "alpha"}).status_code == 302
    response = admin_client.post(url(Site, "add"), {"name": "Alpha again", "slug": "alpha"})
    assert response.status_code == 200
    assert "exists already" in " ".join(response.context["form"].errors["slug"])
    assert Site.objects.count() == 1


def test_delete_site_asks_for_confirmation_then_queues_the_job(admin_client, world, superuser):
    site = world[Site]
    page = admin_client.get(url(site)).content.decode()
    assert 'value="delete_sites"' in page
    response = run_action(admin_client, Site, "delete_sites", [site], _return_to_object="1")
    assert response.status_code == 200
    confirm = response.content.decode()
    assert "cannot be undone" in confirm
    assert 'name="post" value="yes"' in confirm
    assert not Job.objects.filter(job_type="site_delete").exists()

    response = run_action(admin_client, Site, "delete_sites", [site], _return_to_object="1", post="yes")
    job = Job.objects.get(job_type="site_delete")
    assert response.status_code == 302
    assert response["Location"] == url(job)
    assert job.site == site and job.status == JobStatus.QUEUED
    entry = AuditEntry.objects.get(action="site.delete")
    assert (entry.resource_id, entry.result, entry.job) == (str(site.pk), AuditResult.ACCEPTED, job)
    assert Site.objects.filter(pk=site.pk).exists()  # the job removes it, after the node work


def test_delete_site_is_refused_while_a_job_runs(admin_client, world):
    site = world[Site]
    JobFactory(site=site, node=world[Node], status=JobStatus.RUNNING)
    response = run_action(admin_client, Site, "delete_sites", [site], _return_to_object="1", post="yes")
    assert response["Location"] == url(site)
    assert any("queued or running" in text for text in messages_of(admin_client.get(response["Location"])))
    assert not Job.objects.filter(job_type="site_delete").exists()
    assert AuditEntry.objects.get(action="site.delete").result == AuditResult.FAILED


def test_delete_environment_asks_then_queues_and_refuses_production(admin_client, world):
    staging = world[Environment]
    production = world[Site].environments.get(slug="production")
    assert 'value="delete_environments"' in admin_client.get(url(staging)).content.decode()
    assert 'value="delete_environments"' not in admin_client.get(url(production)).content.decode()
    response = run_action(admin_client, Environment, "delete_environments", [staging], _return_to_object="1")
    assert response.status_code == 200 and "cannot be undone" in response.content.decode()
    assert not Job.objects.filter(job_type="env_delete").exists()

    response = run_action(admin_client, Environment, "delete_environments", [staging], _return_to_object="1", post="yes")
    job = Job.objects.get(job_type="env_delete")
    assert response.status_code == 302 and response["Location"] == url(job) and job.environment == staging
    assert AuditEntry.objects.get(action="environment.delete").result == AuditResult.ACCEPTED

    response = run_action(admin_client, Environment, "delete_environments", [production], _return_to_object="1",
                          post="yes")
    assert any("deleted with its site" in text for text in messages_of(admin_client.get(response["Location"])))
    assert Job.objects.filter(job_type="env_delete").count() == 1


# --- environments: WordPress admin and health check ----------------------------------


def test_environment_pages_offer_wordpress_admin_and_health_check(admin_client, world):
    production = world[Site].environments.get(slug="production")
    page = admin_client.get(url(production)).content.decode()
    assert 'value="open_wordpress_admin"' in page
    assert 'value="run_health_check"' in page
    listing = admin_client.get(url(Environment, "changelist")).content.decode()
    wp_admin = reverse("admin:environments_environment_wp_admin", args=(production.pk,))
    assert f'formaction="{wp_admin}"' in listing

    Environment.objects.filter(pk=production.pk).update(status=LifecycleStatus.DEPLOYING)
    assert 'value="open_wordpress_admin"' not in admin_client.get(url(production)).content.decode()


def test_open_wordpress_admin_on_an_environment_that_is_not_active_shows_the_error(admin_client, world):
    environment = world[Environment]
    Environment.objects.filter(pk=environment.pk).update(status=LifecycleStatus.DEPLOYING)
    response = run_action(admin_client, Environment, "open_wordpress_admin", [environment], _return_to_object="1")
    assert response.status_code == 302
    assert response["Location"] == url(environment)
    assert any("not active" in text for text in messages_of(admin_client.get(response["Location"])))
    entry = AuditEntry.objects.get(action="environment.magic_login")
    assert (entry.resource_id, entry.result, entry.details["code"]) == (
        str(environment.pk), AuditResult.FAILED, "environment_not_active")

    # The list's button: POST only, and the same error back on the list.
    wp_admin = reverse("admin:environments_environment_wp_admin", args=(environment.pk,))
    assert admin_client.get(wp_admin).status_code == 405
    response = admin_client.post(wp_admin)
    assert response["Location"] == url(Environment, "changelist")
    assert any("not active" in text for text in messages_of(admin_client.get(response["Location"])))


def test_open_wordpress_admin_needs_exactly_one_environment(admin_client, world):
    environments = list(Environment.objects.all())
    response = run_action(admin_client, Environment, "open_wordpress_admin", environments)
    assert any("exactly one" in text for text in messages_of(admin_client.get(response["Location"])))
    assert not AuditEntry.objects.filter(action="environment.magic_login").exists()


def test_wordpress_admin_button_checks_csrf(superuser, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    wp_admin = reverse("admin:environments_environment_wp_admin", args=(world[Environment].pk,))
    assert client.post(wp_admin).status_code == 403


def test_health_check_action_queues_the_job_and_shows_it(admin_client, world):
    environment = world[Environment]
    response = run_action(admin_client, Environment, "run_health_check", [environment], _return_to_object="1")
    job = Job.objects.get(job_type="health_check")
    assert job.environment == environment
    assert response["Location"] == url(job)
    entry = AuditEntry.objects.get(action="environment.health_check")
    assert (entry.result, entry.job) == (AuditResult.ACCEPTED, job)


# --- nodes: register, health, provision, re-pin -----------------------------------------

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIES9+TnpTv2RuOZDzkimjbWKAi8QS9sykMzlCAVl4roh"

HEALTH = {
    "services": {"nginx": True, "php-fpm": True, "mariadb": False, "redis": True},
    "disk": {"path": "/", "total_bytes": 40 * 1024**3, "free_bytes": 10 * 1024**3, "used_percent": 75.0},
    "memory": {"total_bytes": 4 * 1024**3, "available_bytes": 3 * 1024**3, "used_percent": 25.0},
    "load": {"1m": 0.5, "5m": 0.25, "15m": 0.125, "cpus": 2},
    "versions": {"nginx": "1.22.1", "php": "8.2.29", "mariadb": "10.11.11", "redis": "7.0.15", "os": "Debian 12"},
    "firewall": {"rules_file": "/etc/pressluft/firewall.nft", "tcp_ports": [22, 80, 443], "applied": True},
    "fail2ban": {"running": False, "error": "no journal"},
    "listen_address": "",
}


@pytest.fixture
def closed_port():
    from tests.nodes.support import free_port

    return free_port()


def test_node_page_shows_health_and_the_panel_key(admin_client, node):
    from apps.nodes import keys

    Node.objects.filter(pk=node.pk).update(health=HEALTH, host_key=HOST_KEY)
    page = admin_client.get(url(node)).content.decode()
    for text in ("nginx", "mariadb", "stopped", "10.0 GB free of 40.0 GB", "75.0 % used",
                 "3.0 GB available of 4.0 GB", "0.50 / 0.25 / 0.12", "Debian 12", "php 8.2.29",
                 "TCP 22, 80, 443", "no journal", "all addresses"):
        assert text in page, text
    assert keys.public_key() in page
    assert "ssh-ed25519 PRIVATE" not in page and "PRIVATE KEY" not in page
    assert fingerprint(HOST_KEY) in page
    for action in ("provision_nodes", "refresh_health", "repin_host_keys"):
        assert f'value="{action}"' in page
    empty = NodeFactory(name="fresh")
    assert "No report yet" in admin_client.get(url(empty)).content.decode()


def test_register_node_form_renders_with_the_public_key(admin_client, db):
    from apps.nodes import keys

    response = admin_client.get(url(Node, "add"))
    assert response.status_code == 200
    page = response.content.decode()
    assert keys.public_key() in page
    for field in ("name", "hostname", "ssh_port", "ssh_user", "public_ipv4"):
        assert f'name="{field}"' in page


@pytest.mark.parametrize(
    "data, field, text",
    [
        ({"name": "Bad Name", "hostname": "10.0.0.5"}, "name", "does not match"),
        ({"name": "web-1", "hostname": "bad host;"}, "hostname", "does not match"),
        ({"name": "web-1", "hostname": "node.example.com"}, "public_ipv4", "Required when the hostname"),
        ({"name": "web-1", "hostname": "10.0.0.5", "public_ipv4": "10.0.0"}, "public_ipv4", "valid IPv4"),
        ({"name": "web-1", "hostname": "10.0.0.5", "ssh_port": "70000"}, "ssh_port", "less than or equal"),
        ({"name": "web-1", "hostname": "10.0.0.5", "ssh_user": "Root!"}, "ssh_user", "does not match"),
    ],
)
def test_register_node_form_validates_like_the_api(admin_client, db, data, field, text):
    response = admin_client.post(url(Node, "add"), {"ssh_port": "22", "ssh_user": "root", **data})
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert text in errors, response.context["form"].errors
    assert not Node.objects.exists()


def test_register_node_form_shows_why_the_node_could_not_be_reached(admin_client, db, closed_port):
    response = admin_client.post(
        url(Node, "add"),
        {"name": "web-1", "hostname": "127.0.0.1", "ssh_port": str(closed_port), "ssh_user": "root"},
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "127.0.0.1" in errors
    assert not Node.objects.exists()
    entry = AuditEntry.objects.get(action="node.register")
    assert (entry.result, entry.details["code"]) == (AuditResult.FAILED, "node_unreachable")


def test_provision_action_queues_the_job_and_shows_it(admin_client, node):
    response = run_action(admin_client, Node, "provision_nodes", [node], _return_to_object="1")
    job = Job.objects.get(job_type="node_provision")
    assert job.node == node and job.status == JobStatus.QUEUED
    assert response["Location"] == url(job)
    assert AuditEntry.objects.get(action="node.provision").job == job


def test_refresh_health_of_an_unreachable_node_says_so(admin_client, node, closed_port):
    Node.objects.filter(pk=node.pk).update(ssh_port=closed_port, host_key=HOST_KEY)
    response = run_action(admin_client, Node, "refresh_health", [node], _return_to_object="1")
    assert response["Location"] == url(node)
    assert any("node-" in text and "127.0.0.1" in text for text in messages_of(admin_client.get(response["Location"])))
    node.refresh_from_db()
    assert node.status == NodeStatus.UNREACHABLE
    entry = AuditEntry.objects.get(action="node.health_check")
    assert (entry.result, entry.details["code"]) == (AuditResult.FAILED, "node_unreachable")


def test_repin_host_key_needs_a_confirmation_that_the_key_was_verified(admin_client, node, closed_port):
    pinned = HOST_KEY
    Node.objects.filter(pk=node.pk).update(ssh_port=closed_port, host_key=pinned)
    response = run_action(admin_client, Node, "repin_host_keys", [node], _return_to_object="1")
    assert response.status_code == 200
    page = response.content.decode()
    assert "verified" in page
    assert fingerprint(pinned) in page

    response = run_action(admin_client, Node, "repin_host_keys", [node], _return_to_object="1", post="yes")
    assert response["Location"] == url(node)
    assert messages_of(admin_client.get(response["Location"]))
    node.refresh_from_db()
    assert node.host_key == pinned  # nothing answered: nothing re-pinned
    assert AuditEntry.objects.get(action="node.repin_host_key").result == AuditResult.FAILED


# --- end to end on the real local node ------------------------------------------------


def get_through_nginx(url: str, headers: dict | None = None):
    """GET a preview URL through the node's Nginx on loopback: (status, all headers)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=30)
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                           headers={"Host": parts.hostname, **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheaders()
    finally:
        connection.close()


@pytest.fixture
def firewall_off(settings):
    settings.NODE_APPLY_FIREWALL = False  # never load the rules on this machine


@pytest.mark.django_db(transaction=True)
def test_open_wordpress_admin_logs_in_on_the_real_node(firewall_off, api_client, local_node, superuser):  # noqa: F811
    from apps.jobs import runner
    from apps.nodes import ssh
    from tests.nodes.support import job_log

    created = api_client.post("/api/sites", {"name": "Admin Door", "slug": "admin-door"}, format="json")
    assert created.status_code == 202, created.content
    assert runner.run_job(created.json()["job_id"]) == "succeeded", job_log(created.json()["job_id"])
    site = Site.objects.get(slug="admin-door")
    environment = site.environments.get()
    client = Client()
    client.force_login(superuser)
    try:
        # The button on the environment's page.
        response = run_action(client, Environment, "open_wordpress_admin", [environment], _return_to_object="1")
        assert response.status_code == 302
        login_url = response["Location"]
        assert login_url.startswith(f"{environment.preview_url}/?pressluft_login=")
        status, headers = get_through_nginx(login_url)
        assert status == 302
        cookies = [value for name, value in headers if name.lower() == "set-cookie"]
        assert any(cookie.startswith("wordpress_logged_in_") for cookie in cookies)
        session = "; ".join(cookie.split(";", 1)[0] for cookie in cookies)
        assert get_through_nginx(f"{environment.preview_url}/wp-admin/", {"Cookie": session})[0] == 200
        assert get_through_nginx(login_url)[0] == 403  # used once

        # The list's button gives a fresh link.
        response = client.post(reverse("admin:environments_environment_wp_admin", args=(environment.pk,)))
        assert response["Location"].startswith(f"{environment.preview_url}/?pressluft_login=")
        assert response["Location"] != login_url
        entries = AuditEntry.objects.filter(action="environment.magic_login", details__via="admin")
        assert [entry.result for entry in entries] == [AuditResult.SUCCEEDED] * 2
        assert not any("pressluft_login" in str(entry.details) for entry in entries)
    finally:
        deleted = api_client.delete(f"/api/sites/{site.pk}")
        runner.run_job(deleted.json()["job_id"])
        ssh.close_all()


# --- clone environment ---------------------------------------------------------


def clone_url(environment):
    return reverse("admin:environments_environment_clone", args=(environment.pk,))


def test_clone_action_leads_to_a_form_that_renders(admin_client, site_with_production):
    _, production = site_with_production
    response = run_action(admin_client, Environment, "clone_environment", [production])
    assert response.status_code == 302 and response["Location"] == clone_url(production)
    response = admin_client.get(response["Location"])
    assert response.status_code == 200
    page = response.content.decode()
    for field in ("name", "slug", "type", "promotion_preset"):
        assert f'name="{field}"' in page
    assert [value for value, _ in response.context["form"].fields["type"].choices] == ["staging", "clone"]
    # The change page offers it as a button too.
    assert "Clone environment" in admin_client.get(url(production)).content.decode()


def test_clone_action_wants_exactly_one_environment(admin_client, world):
    site = world[Site]
    response = run_action(admin_client, Environment, "clone_environment", list(site.environments.all()))
    assert response.status_code == 302
    assert any("exactly one" in text for text in messages_of(admin_client.get(response["Location"])))


@pytest.mark.parametrize(
    "data, field, text",
    [
        ({"name": "Staging", "slug": "Bad_Slug"}, "slug", "Use lower-case letters"),
        ({"name": "   ", "slug": "staging"}, "name", "may not be blank"),
        ({"name": "Staging", "slug": "staging", "type": "production"}, "type", "not one of the available choices"),
    ],
)
def test_clone_form_shows_validation_errors(admin_client, site_with_production, data, field, text):
    _, production = site_with_production
    body = {"type": "staging", "promotion_preset": "content-protect", **data}
    response = admin_client.post(clone_url(production), body)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert text in errors, response.context["form"].errors
    assert "Please correct" in response.content.decode()
    assert not Job.objects.exists()
    assert production.site.environments.count() == 1


def test_clone_form_queues_env_create_and_goes_to_the_job(admin_client, site_with_production, node, superuser):
    site, production = site_with_production
    assert node.status == NodeStatus.ACTIVE
    response = admin_client.post(clone_url(production), {
        "name": "QA copy", "slug": "qa", "type": "clone", "promotion_preset": "commerce-protect",
    })
    assert response.status_code == 302, response.content.decode()
    job = Job.objects.get()
    copy = Environment.objects.get(site=site, slug="qa")
    assert (job.job_type, job.status, job.environment) == ("env_create", JobStatus.QUEUED, copy)
    assert job.payload["source_environment_id"] == str(production.pk)
    assert (copy.name, copy.environment_type, copy.promotion_preset, copy.status, copy.source_environment) == (
        "QA copy", EnvironmentType.CLONE, "commerce-protect", LifecycleStatus.CLONING, production)
    assert response["Location"] == url(job)
    assert any("copy queued" in text for text in messages_of(admin_client.get(response["Location"])))
    entry = AuditEntry.objects.get(action="environment.create")
    assert (entry.result, entry.job, entry.user) == (AuditResult.ACCEPTED, job, superuser)


def test_clone_form_shows_a_refusal_of_the_service(admin_client, site_with_production, node):
    _, production = site_with_production
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.UNREACHABLE)
    response = admin_client.post(clone_url(production), {
        "name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect",
    })
    assert response.status_code == 200
    assert any("not active" in text for text in messages_of(response)), messages_of(response)
    assert 'value="staging"' in response.content.decode()  # the form keeps what was typed
    assert not Job.objects.exists()
    assert AuditEntry.objects.get(action="environment.create").result == AuditResult.FAILED


def test_clone_environment_command_queues_the_job(site_with_production, node):
    from io import StringIO

    from django.core.management import CommandError, call_command

    site, production = site_with_production
    out, err = StringIO(), StringIO()
    call_command("clone_environment", site.slug, "--name", "Staging", "--slug", "staging", stdout=out, stderr=err)
    job = Job.objects.get(pk=out.getvalue().strip())
    staging = Environment.objects.get(site=site, slug="staging")
    assert (job.job_type, job.status, job.environment) == ("env_create", JobStatus.QUEUED, staging)
    assert (staging.environment_type, staging.promotion_preset, staging.source_environment) == (
        EnvironmentType.STAGING, "content-protect", production)
    assert "Queued env_create" in err.getvalue()
    with pytest.raises(CommandError, match="already"):
        call_command("clone_environment", site.slug, "--name", "Again", "--slug", "staging", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="slug"):
        call_command("clone_environment", site.slug, "--name", "Bad", "--slug", "Bad_Slug", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="no environment"):
        call_command("clone_environment", site.slug, "nope", "--name", "X", "--slug", "x", stdout=out, stderr=err)
    assert Job.objects.count() == 1
