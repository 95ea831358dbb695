"""The admin and the API agree on who may do what: the admin's actions ask for
the same named permissions, production needs environments.manage_production
there too, and API tokens are only ever minted for the person asking."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.factories import UserFactory
from apps.accounts.models import TOKEN_PREFIX, ApiToken
from apps.accounts.roles import DEVELOPERS, OPERATORS, VIEWERS
from apps.accounts.services import create_api_token
from apps.audit.models import AuditEntry
from apps.core.choices import LifecycleStatus
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.environments.models import Environment, Release
from apps.jobs.models import Job
from apps.nodes.factories import NodeFactory
from apps.nodes.models import Node
from apps.sites.factories import SiteFactory
from apps.sites.models import Site
from tests.test_admin import messages_of, run_action, url

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(re.escape(TOKEN_PREFIX) + r"[0-9a-f]+_[A-Za-z0-9_-]+")


def signed_in(*groups, **extra) -> Client:
    user = UserFactory(groups=list(groups), **extra)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def environments():
    # Port 1: nothing listens, so whatever reaches for the node fails at once.
    node = NodeFactory(ssh_port=1)
    site = SiteFactory()
    production = EnvironmentFactory(site=site, node=node, slug="production")
    staging = EnvironmentFactory(site=site, node=node, slug="staging", name="Staging",
                                 environment_type=EnvironmentType.STAGING, source_environment=production)
    for environment in (production, staging):
        Release.objects.create(environment=environment, source_type="git", source_ref="v1",
                               directory="20260101T000000Z", health="healthy")
        current = Release.objects.create(environment=environment, source_type="git", source_ref="v2",
                                         directory="20260102T000000Z", health="healthy")
        Environment.objects.filter(pk=environment.pk).update(current_release=current)
        environment.refresh_from_db()
    return production, staging


def refusal(action, resource=None):
    entries = AuditEntry.objects.filter(action=action)
    if resource is not None:
        entries = entries.filter(resource_id=str(resource.pk))
    entry = entries.latest("created_at")
    return entry.result, entry.details.get("code")


# --- API tokens ------------------------------------------------------------------------------


def test_a_staff_member_cannot_mint_a_token_for_someone_else():
    root = UserFactory(email="root@example.test", is_superuser=True)
    developer = signed_in(DEVELOPERS)
    page = developer.get(url(ApiToken, "add"))
    assert page.status_code == 200
    assert "user" not in page.context["adminform"].form.fields

    # A hand-made form naming the superuser: the token is still the requester's own.
    response = developer.post(url(ApiToken, "add"), {"user": str(root.pk), "name": "borrowed"})
    assert response.status_code == 200, response.content
    token = ApiToken.objects.get(name="borrowed")
    assert token.user == developer.user
    assert not root.api_tokens.exists()
    # And it acts with the developer's permissions, not more.
    plaintext = TOKEN_RE.findall(response.content.decode())[0]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.get("/api/sites").status_code == 200
    refused = api.post("/api/sites", {"name": "Nope", "slug": "nope"}, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"


def test_a_superuser_mints_only_their_own_tokens_too():
    root = signed_in(is_superuser=True)
    other = UserFactory()
    root.post(url(ApiToken, "add"), {"user": str(other.pk), "name": "for someone"})
    assert ApiToken.objects.get(name="for someone").user == root.user


def test_a_viewer_may_not_add_tokens_in_the_admin():
    viewer = signed_in(VIEWERS)
    assert viewer.get(url(ApiToken, "add")).status_code == 403
    assert viewer.post(url(ApiToken, "add"), {"name": "mine"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_only_the_owner_or_a_superuser_revokes_a_token():
    developer = signed_in(DEVELOPERS)
    colleague = UserFactory(groups=[OPERATORS])
    theirs = create_api_token(colleague, "theirs").token
    mine = create_api_token(developer.user, "mine").token

    run_action(developer, ApiToken, "revoke_tokens", [theirs, mine])
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.revoked_at is None and mine.revoked_at is not None
    refused = AuditEntry.objects.get(action="apitoken.revoke", resource_id=str(theirs.pk))
    assert (refused.result, refused.details["code"]) == ("failed", "permission_denied")
    # Nor may they rename someone else's token.
    assert developer.post(url(theirs), {"name": "renamed"}).status_code == 403

    run_action(signed_in(is_superuser=True), ApiToken, "revoke_tokens", [theirs])
    theirs.refresh_from_db()
    assert theirs.revoked_at is not None


# --- environments: the action permissions, and production ------------------------------------


def test_a_developer_deploys_staging_but_not_production_in_the_admin(environments):
    production, staging = environments
    developer = signed_in(DEVELOPERS)
    for page in ("deploy", "git_repository"):
        assert developer.get(url(Environment, page, production.pk)).status_code == 403
        assert developer.get(url(Environment, page, staging.pk)).status_code == 200
    response = developer.post(url(Environment, "deploy", production.pk), {"git_ref": "https://git.example.test/a.git#main"})
    assert response.status_code == 403
    assert not Job.objects.exists()

    response = developer.post(url(Environment, "deploy", staging.pk), {"git_ref": "https://git.example.test/a.git#main"})
    assert response.status_code == 302, messages_of(response)
    assert Job.objects.get().environment == staging

    # Production's page offers none of it.
    page = developer.get(url(production)).content.decode()
    for action in ("deploy_environment", "edit_git_repository", "open_wordpress_admin", "run_health_check"):
        assert f'value="{action}"' not in page
    assert 'value="deploy_environment"' in developer.get(url(staging)).content.decode()


def test_an_operator_deploys_production_in_the_admin(environments):
    production, _ = environments
    operator = signed_in(OPERATORS)
    response = operator.post(url(Environment, "deploy", production.pk), {"git_ref": "https://git.example.test/a.git#main"})
    assert response.status_code == 302
    assert Job.objects.get().environment == production


def test_a_developer_cannot_log_in_to_productions_wordpress_from_the_admin(environments):
    production, staging = environments
    developer = signed_in(DEVELOPERS)
    developer.post(reverse("admin:environments_environment_wp_admin", args=(production.pk,)))
    assert refusal("environment.magic_login") == ("failed", "permission_denied")
    run_action(developer, Environment, "open_wordpress_admin", [production])
    assert refusal("environment.magic_login") == ("failed", "permission_denied")

    # On staging the request goes to the node (which does not answer here).
    developer.post(reverse("admin:environments_environment_wp_admin", args=(staging.pk,)))
    assert refusal("environment.magic_login") == ("failed", "node_unreachable")


def test_a_viewer_may_neither_log_in_nor_read_held_mail(environments):
    _, staging = environments
    viewer = signed_in(VIEWERS)
    assert viewer.get(url(staging)).status_code == 200
    assert viewer.post(reverse("admin:environments_environment_wp_admin", args=(staging.pk,))).status_code == 403
    assert viewer.get(url(Environment, "held_mail", staging.pk)).status_code == 403
    assert not AuditEntry.objects.filter(action="environment.magic_login").exists()


def test_a_viewer_may_neither_read_the_holds_nor_run_held_work(environments):
    _, staging = environments
    viewer = signed_in(VIEWERS)
    holds = url(Environment, "staging_holds", staging.pk)
    assert viewer.get(holds).status_code == 403
    assert viewer.post(holds, {"run_scheduled": "1"}).status_code == 403
    assert viewer.get(url(Environment, "outgoing_allow_list", staging.pk)).status_code == 403
    run_action(viewer, Environment, "run_scheduled_work", [staging])
    assert not Job.objects.filter(job_type="env_run_scheduled").exists()
    page = viewer.get(url(staging)).content.decode()
    assert 'value="run_scheduled_work"' not in page and 'value="show_staging_holds"' not in page
    assert "WP-Cron and Action Scheduler held" in page  # what is held is no secret; what it holds back is


def test_a_developer_runs_held_work_on_staging_from_the_admin(environments):
    production, staging = environments
    developer = signed_in(DEVELOPERS)
    page = developer.get(url(staging)).content.decode()
    assert 'value="run_scheduled_work"' in page and 'value="show_staging_holds"' in page
    run_action(developer, Environment, "run_scheduled_work", [staging])
    job = Job.objects.get(job_type="env_run_scheduled")
    assert job.environment == staging
    assert AuditEntry.objects.get(action="environment.run_scheduled", job=job).details["via"] == "admin"
    # Production holds nothing back: refused, and said why.
    run_action(signed_in(OPERATORS), Environment, "run_scheduled_work", [production])
    assert refusal("environment.run_scheduled", production) == ("failed", "conflict")
    assert Job.objects.filter(job_type="env_run_scheduled").count() == 1


def test_a_developer_resets_a_failed_staging_but_not_production(environments):
    production, staging = environments
    Environment.objects.filter(pk__in=[production.pk, staging.pk]).update(status=LifecycleStatus.FAILED)
    developer = signed_in(DEVELOPERS)
    run_action(developer, Environment, "reset_failed_state", [production, staging])
    production.refresh_from_db()
    staging.refresh_from_db()
    assert (production.status, staging.status) == (LifecycleStatus.FAILED, LifecycleStatus.ACTIVE)
    refused = AuditEntry.objects.get(action="environment.reset", resource_id=str(production.pk))
    assert (refused.result, refused.details["code"]) == ("failed", "permission_denied")

    run_action(signed_in(OPERATORS), Environment, "reset_failed_state", [production])
    production.refresh_from_db()
    assert production.status == LifecycleStatus.ACTIVE


def test_a_developer_rolls_back_staging_but_not_production(environments):
    production, staging = environments
    developer = signed_in(DEVELOPERS)
    for environment in (production, staging):
        earlier = environment.releases.get(source_ref="v1")
        run_action(developer, Release, "rollback_to_release", [earlier], post="yes")
        developer.post(url(Environment, "releases", environment.pk), {"release_id": str(earlier.pk)})
    assert {job.environment for job in Job.objects.all()} == {staging}
    assert Job.objects.count() == 2
    assert not AuditEntry.objects.filter(action="environment.rollback", resource_id=str(production.pk)) \
        .exclude(details__code="permission_denied").exists()


def test_a_developers_health_check_and_deletion_stay_off_production(environments):
    production, staging = environments
    developer = signed_in(DEVELOPERS)
    run_action(developer, Environment, "delete_environments", [production], post="yes")
    assert refusal("environment.delete") == ("failed", "permission_denied")
    run_action(developer, Environment, "delete_environments", [staging], post="yes")
    assert [(job.job_type, job.environment) for job in Job.objects.all()] == [("env_delete", staging)]

    clone = EnvironmentFactory(site=production.site, node=production.node, slug="clone",
                               environment_type=EnvironmentType.CLONE, source_environment=production)
    run_action(developer, Environment, "run_health_check", [production, clone])
    assert refusal("environment.health_check", production) == ("failed", "permission_denied")
    assert [job.environment for job in Job.objects.filter(job_type="health_check")] == [clone]


def test_a_developer_cannot_rename_production(environments):
    production, staging = environments
    developer = signed_in(DEVELOPERS)
    form = {"name": "Renamed", "_state_version": "1"}
    assert developer.post(url(production), form).status_code == 403
    assert developer.post(url(staging), form).status_code == 302
    production.refresh_from_db()
    staging.refresh_from_db()
    assert (production.name, staging.name) == ("Production", "Renamed")


# --- sites and nodes ---------------------------------------------------------------------------


def test_only_operators_delete_sites_and_provision_nodes(environments):
    production, _ = environments
    site, node = production.site, production.node
    for client in (signed_in(DEVELOPERS), signed_in(VIEWERS), signed_in()):
        run_action(client, Site, "delete_sites", [site], post="yes")
        run_action(client, Node, "provision_nodes", [node])
        run_action(client, Node, "repin_host_keys", [node], post="yes")
    assert not Job.objects.exists()
    node.refresh_from_db()
    assert node.host_key == ""

    operator = signed_in(OPERATORS)
    run_action(operator, Node, "provision_nodes", [node])
    run_action(operator, Site, "delete_sites", [site], post="yes")
    assert sorted(Job.objects.values_list("job_type", flat=True)) == ["node_provision", "site_delete"]


def test_staff_without_permissions_see_nothing_in_the_admin(environments):
    production, _ = environments
    nobody = signed_in()
    assert nobody.get(url(Environment, "changelist")).status_code == 403
    assert nobody.get(url(production)).status_code == 403
    assert nobody.get(url(Environment, "deploy", production.pk)).status_code == 403
