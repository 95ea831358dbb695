"""The API asks for the same permissions as the admin.

Every route of the URL conf is walked (a new endpoint joins these tests by
itself): a staff member without permissions and a Viewer are refused every
write, with nothing changed; reads need the view permission; a Developer
works on staging but not on production; an Operator passes every check. All
requests carry a real bearer token, so token authentication goes through the
same checks as a session.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from apps.accounts.factories import UserFactory
from apps.accounts.permissions import MANAGE_PRODUCTION, DeclaredPermissions, IsStaff
from apps.accounts.roles import DEVELOPERS, OPERATORS, VIEWERS
from apps.accounts.services import create_api_token
from apps.audit.models import AuditEntry
from apps.backups.factories import BackupFactory
from apps.backups.models import Backup
from apps.core.models import PanelSettings
from apps.domains.factories import DomainFactory
from apps.domains.models import Domain
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.environments.models import DeployArchive, Environment, Release
from apps.jobs.choices import JobStatus
from apps.jobs.factories import JobFactory
from apps.jobs.models import Job, JobLogLine
from apps.nodes.factories import NodeFactory
from apps.nodes.models import Node
from apps.sites.factories import SiteFactory
from apps.sites.models import Site
from tests.api.routes import api_url_patterns
from tests.conftest import PASSWORD
from tests.environments.archives import make_tar

pytestmark = pytest.mark.django_db

MUTATING = ("POST", "PUT", "PATCH", "DELETE")

# Routes with a permission class of their own, on purpose. Nothing else may
# leave the default (DeclaredPermissions).
OPEN_ROUTES = {
    "login": AllowAny,  # anyone may try to log in
    "logout": IsAuthenticated,  # ending one's own session needs no permission
    # The API's description, for any active staff member.
    "schema": IsStaff,
    "docs": IsStaff,
    "redoc": IsStaff,
}

# Reads a Viewer is refused: held mail is the mail an environment's WordPress
# sent (customers' addresses copied from production), as private as logging in;
# so are the staging holds and outgoing requests (the copy's orders, the hosts it calls).
VIEWER_MAY_NOT_READ = {"environment-held-mail", "environment-staging-holds", "environment-outgoing-requests"}
# Reads that ask the node at once — held mail, the updates on offer (this world's node does not answer)…
NODE_READS = {"environment-held-mail", "environment-updates"}
# ...and those that production answers 409: it holds nothing back.
NOT_ON_PRODUCTION = {"environment-staging-holds", "environment-outgoing-requests",
                     "environment-promotion-plan"}  # production is what is promoted into


@dataclass(frozen=True)
class Route:
    name: str
    path: str  # with <uuid:id>
    view_class: type
    methods: tuple[str, ...]

    @property
    def on_environment(self) -> bool:
        return self.path.startswith("environments/<")


def api_routes() -> list[Route]:
    routes = []
    for path, pattern in api_url_patterns():
        callback = pattern.callback
        view = callback.cls(**callback.initkwargs)
        methods = tuple(method for method in view.allowed_methods if method not in ("OPTIONS", "HEAD"))
        routes.append(Route(pattern.name, path, callback.cls, methods))
    return routes


ROUTES = api_routes()
GUARDED = [route for route in ROUTES if route.name not in OPEN_ROUTES]
WRITES = [(route, method) for route in GUARDED for method in route.methods if method in MUTATING]
READS = [route for route in GUARDED if "GET" in route.methods]


def write_id(param):
    return f"{param[1]} {param[0].path}" if isinstance(param, tuple) else None


# --- the world every route is called against -----------------------------------


# A privileged loopback port nothing listens on: SSH to this world's node is
# refused at once (a free port picked now could be another test run's sshd later).
CLOSED_PORT = 1
NODE_ERRORS = {"node_unreachable", "host_key_mismatch", "ssh_auth_failed"}


@dataclass
class World:
    node: Node
    site: Site
    production: Environment
    staging: Environment
    job: Job
    earlier_release: dict  # environment id -> a healthy release that is not the current one
    domain: Domain  # production's

    def environment(self, kind: str) -> Environment:
        return self.production if kind == "production" else self.staging

    def url(self, route: Route, environment: Environment) -> str:
        ids = {"sites": self.site.pk, "environments": environment.pk, "jobs": self.job.pk, "nodes": self.node.pk,
               "domains": self.domain.pk,
               "backups": Backup.objects.filter(environment__site=self.site).values_list("pk", flat=True).first()}
        path = route.path
        if "<" in path:
            prefix = path.split("/", 1)[0]
            assert prefix in ids, f"a new kind of route ({path}): teach this test which object its id names"
            path = path.replace("<uuid:id>", str(ids[prefix]))
        return f"/api/{path}"


@pytest.fixture
def world(settings, tmp_path):
    settings.DEPLOY_ARCHIVE_DIR = tmp_path / "deploy-archives"
    node = NodeFactory(ssh_port=CLOSED_PORT)
    site = SiteFactory()
    repository = "https://git.example.test/shop.git"
    production = EnvironmentFactory(site=site, node=node, slug="production", git_repository=repository)
    staging = EnvironmentFactory(site=site, node=node, slug="staging", name="Staging", git_repository=repository,
                                 environment_type=EnvironmentType.STAGING, source_environment=production)
    earlier = {}
    for environment in (production, staging):
        first, second = (
            Release.objects.create(environment=environment, source_type="git", source_ref=ref, directory=directory,
                                   health="healthy")
            for ref, directory in (("v1", "20260101T000000Z"), ("v2", "20260102T000000Z"))
        )
        Environment.objects.filter(pk=environment.pk).update(current_release=second)
        earlier[environment.pk] = first
    job = JobFactory(site=site, environment=production, node=node, status=JobStatus.FAILED,
                     error_code="remote_step_failed", error_message="Step 3 failed.")
    BackupFactory(environment=production)
    domain = DomainFactory(environment=production)
    production.refresh_from_db()
    staging.refresh_from_db()
    return World(node, site, production, staging, job, earlier, domain)


def request(client, world: World, route: Route, method: str, environment: Environment, tmp_path, query=""):
    """The request a client with the permission would make: with a valid body,
    so that a missing check would show as a change."""
    if route.name == "environment-promotion-plan":
        query = f"?target={world.production.pk}"
    url = world.url(route, environment) + query
    if route.name == "environment-deploy-archives":
        archive = make_tar(tmp_path / "theme.tar.gz", [("site/themes/lark/style.css", "file", "/* Theme Name: Lark */")])
        with open(archive, "rb") as handle:
            upload = SimpleUploadedFile("theme.tar.gz", handle.read())
        return client.post(url, {"file": upload}, format="multipart")
    bodies = {
        ("site-list", "POST"): {"name": "Not Allowed", "slug": "not-allowed"},
        ("site-environments", "POST"): {"name": "Copy", "slug": "copy", "type": "staging",
                                        "promotion_preset": "content-protect", "source_environment_id": str(environment.pk)},
        ("environment-deploy", "POST"): {"source_type": "git", "source_ref": "main"},
        ("environment-updates", "POST"): {"scope": "all"},
        ("environment-rollback", "POST"): {"release_id": str(world.earlier_release[environment.pk].pk)},
        ("environment-restore", "POST"): {"backup_id": str(Backup.objects.filter(environment__site=world.site)
                                                           .values_list("pk", flat=True).first())},
        ("environment-promote", "POST"): {"target_environment_id": str(world.production.pk)},
        ("environment-git-repository", "PUT"): {"repository_url": "https://git.example.test/other.git",
                                                "new_deploy_key": True},
        ("environment-outgoing-allow-list", "PUT"): {"hosts": ["api.example.test"]},
        ("node-list", "POST"): {"name": "intruder", "hostname": "127.0.0.1", "ssh_port": world.node.ssh_port,
                                "public_ipv4": "127.0.0.1"},
    }
    return getattr(client, method.lower())(url, bodies.get((route.name, method), {}), format="json")


def snapshot(archive_dir) -> dict:
    """Everything a request could change (API tokens aside: using one stamps last_used_at)."""
    state = {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in (Site, Environment, Node, Job, JobLogLine, Release, DeployArchive, Backup, Domain, PanelSettings)
    }
    state["archives"] = sorted(p.name for p in archive_dir.iterdir()) if archive_dir.exists() else []
    return state


@pytest.fixture
def client_of(db):
    """A REST client for a new staff member in the given groups, with a bearer token."""

    def make(*groups: str, **extra) -> APIClient:
        user = UserFactory(groups=list(groups), **extra)
        issued = create_api_token(user, "tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
        client.user = user
        return client

    return make


def assert_permission_denied(response, missing=None):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "permission_denied" and body["message"], body
    assert body["details"]["missing"], body
    if missing is not None:
        assert body["details"]["missing"] == missing, body
    return body


# --- every view declares what it needs ------------------------------------------------


def test_the_route_walk_sees_the_whole_api():
    names = {route.name for route in ROUTES}
    assert {"site-list", "environment-deploy", "environment-magic-login", "node-provision", "job-retry"} <= names
    assert set(OPEN_ROUTES) <= names, "an open route listed here no longer exists"
    assert len(WRITES) >= 16


@pytest.mark.parametrize("route", ROUTES, ids=[route.path for route in ROUTES])
def test_every_view_declares_the_permissions_of_each_method(route):
    permission_classes = route.view_class().get_permissions()
    if route.name in OPEN_ROUTES:
        assert [type(p) for p in permission_classes] == [OPEN_ROUTES[route.name]]
        return
    assert [type(p) for p in permission_classes] == [DeclaredPermissions], (
        f"{route.view_class.__name__} replaces the API's permission class; list it in OPEN_ROUTES only if it is "
        "meant to be open"
    )
    declared = getattr(route.view_class, "required_permissions", {})
    assert set(route.methods) <= set(declared), f"{route.view_class.__name__}: declare required_permissions"
    for method in route.methods:
        for name in declared[method].permissions:
            app_label, codename = name.split(".")
            assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), name


class Undeclared(APIView):
    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_view_that_declares_nothing_is_refused_even_to_a_superuser(method):
    superuser = UserFactory(is_superuser=True)
    wire = getattr(APIRequestFactory(), method)("/api/undeclared")
    force_authenticate(wire, user=superuser)
    response = Undeclared.as_view()(wire)
    response.render()
    assert response.status_code == 403
    assert response.data["code"] == "permission_denied"
    assert "declares no permission" in response.data["message"]


# --- writes ------------------------------------------------------------------------------


def targets(route):
    return ["production", "staging"] if route.on_environment else ["production"]


WRITE_CASES = [(route, method, target) for route, method in WRITES for target in targets(route)]


@pytest.mark.parametrize("role", ["no permissions", VIEWERS])
@pytest.mark.parametrize("route, method, target", WRITE_CASES,
                         ids=[f"{method} {route.path} ({target})" for route, method, target in WRITE_CASES])
def test_writes_without_the_permission_are_refused_and_change_nothing(client_of, world, settings, tmp_path,
                                                                      role, route, method, target):
    client = client_of() if role == "no permissions" else client_of(role)
    before = snapshot(settings.DEPLOY_ARCHIVE_DIR)
    response = request(client, world, route, method, world.environment(target), tmp_path)
    assert_permission_denied(response)
    assert snapshot(settings.DEPLOY_ARCHIVE_DIR) == before
    entry = AuditEntry.objects.get()
    assert (entry.result, entry.status_code, entry.user) == ("denied", 403, client.user)


@pytest.mark.parametrize("route, method", WRITES, ids=[f"{m} {r.path}" for r, m in WRITES])
def test_operators_pass_every_write_check(client_of, world, tmp_path, route, method):
    response = request(client_of(OPERATORS), world, route, method, world.production, tmp_path)
    # Past the permission check, the services answer: 2xx, or their own refusal (a job
    # that already failed, a node that cannot be reached...), never 403.
    assert response.status_code != 403, response.content
    assert response.status_code < 500 or response.json()["code"] in NODE_ERRORS, response.content


# --- reads -------------------------------------------------------------------------------


@pytest.mark.parametrize("route", READS, ids=[route.path for route in READS])
def test_reads_need_the_view_permission(client_of, world, tmp_path, route):
    assert_permission_denied(request(client_of(), world, route, "GET", world.staging, tmp_path))

    as_viewer = request(client_of(VIEWERS), world, route, "GET", world.staging, tmp_path)
    if route.name in VIEWER_MAY_NOT_READ:
        assert_permission_denied(as_viewer)
    else:
        # Past the permission check: a read the node answers gets this world's unreachable node.
        asks_node = route.name in NODE_READS or route.name in NOT_ON_PRODUCTION
        assert as_viewer.status_code == (502 if asks_node else 200), as_viewer.content


@pytest.mark.parametrize("route", READS, ids=[route.path for route in READS])
def test_operators_read_everything(client_of, world, tmp_path, route):
    response = request(client_of(OPERATORS), world, route, "GET", world.production, tmp_path)
    # Held mail and the updates on offer are read from the node, which this world's node does not answer.
    expected = 502 if route.name in NODE_READS else 409 if route.name in NOT_ON_PRODUCTION else 200
    assert response.status_code == expected, response.content
    if route.name in NOT_ON_PRODUCTION:
        # On staging, past the permission check, they ask the node too.
        response = request(client_of(OPERATORS), world, route, "GET", world.staging, tmp_path)
        assert response.json()["code"] in NODE_ERRORS, response.content


def test_a_live_node_health_check_needs_manage_node(client_of, world):
    path = f"/api/nodes/{world.node.pk}/health"
    viewer = client_of(VIEWERS)
    assert viewer.get(path).status_code == 200
    assert_permission_denied(viewer.get(f"{path}?refresh=1"), missing=["nodes.manage_node"])
    # An Operator's live check reaches for the node (which refuses the connection here).
    assert client_of(OPERATORS).get(f"{path}?refresh=1").json()["code"] in NODE_ERRORS


def test_options_tell_a_viewer_nothing_they_may_not_do(client_of, world):
    assert_permission_denied(client_of().options("/api/sites"))
    response = client_of(VIEWERS).options("/api/sites")
    assert response.status_code == 200, response.content
    assert "POST" not in response.json().get("actions", {})


# --- tokens and sessions act with their user's permissions ---------------------------------


def test_a_viewers_token_reads_but_cannot_write(client_of, world):
    viewer = client_of(VIEWERS)
    assert viewer.get("/api/sites").status_code == 200
    assert_permission_denied(viewer.post("/api/sites", {"name": "Mine", "slug": "mine"}, format="json"),
                             missing=["sites.add_site"])
    assert_permission_denied(viewer.post(f"/api/environments/{world.staging.pk}/deploy",
                                         {"source_type": "git", "source_ref": "main"}, format="json"),
                             missing=["environments.deploy_environment"])
    assert not Job.objects.exclude(pk=world.job.pk).exists()


def test_a_viewers_session_cannot_write_either(world):
    UserFactory(email="viewer@example.test", groups=[VIEWERS])
    client = Client()
    assert client.post("/api/login", {"email": "viewer@example.test", "password": PASSWORD},
                       content_type="application/json").status_code == 200
    assert client.get("/api/sites").status_code == 200
    response = client.post(f"/api/environments/{world.staging.pk}/magic-login")
    assert_permission_denied(response, missing=["environments.magic_login_environment"])


def test_a_permission_given_to_the_user_directly_counts_too(client_of, world):
    client = client_of()
    client.user.user_permissions.add(Permission.objects.get(codename="view_site"))
    assert client.get("/api/sites").status_code == 200
    assert_permission_denied(client.get("/api/jobs"), missing=["jobs.view_job"])


def test_non_staff_tokens_are_refused_as_before(client_of, world):
    response = client_of(OPERATORS, is_staff=False).get("/api/sites")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


# --- Developers: non-production environments, not production ---------------------------------

# (route name, method, the answer past the permission check on staging)
DEVELOPER_WORK = [
    ("environment-deploy", "POST", 202),
    ("environment-rollback", "POST", 202),
    ("environment-deploy-archives", "POST", 201),
    ("environment-git-repository", "PUT", 200),
    ("environment-magic-login", "POST", 502),  # the service asked the node, which refuses here
    ("environment-reset", "POST", 409),  # staging is not failed
    ("environment-detail", "DELETE", 202),
    ("environment-health-check", "POST", 202),
    ("environment-updates", "POST", 409),  # past the permission check: no backup storage here
]
ROUTE_BY_NAME = {route.name: route for route in ROUTES}


@pytest.mark.parametrize("name, method, expected", DEVELOPER_WORK, ids=[f"{m} {n}" for n, m, _ in DEVELOPER_WORK])
def test_a_developer_acts_on_staging_but_not_on_production(client_of, world, settings, tmp_path, name, method,
                                                           expected):
    developer = client_of(DEVELOPERS)
    route = ROUTE_BY_NAME[name]

    before = snapshot(settings.DEPLOY_ARCHIVE_DIR)
    refused = request(developer, world, route, method, world.production, tmp_path)
    body = assert_permission_denied(refused, missing=[MANAGE_PRODUCTION])
    assert "production" in body["message"]
    assert snapshot(settings.DEPLOY_ARCHIVE_DIR) == before

    response = request(developer, world, route, method, world.staging, tmp_path)
    assert response.status_code == expected, response.content


def test_a_developer_creates_a_staging_environment_from_production(client_of, world, tmp_path):
    response = request(client_of(DEVELOPERS), world, ROUTE_BY_NAME["site-environments"], "POST", world.production,
                       tmp_path)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job_id"])
    assert job.job_type == "env_create" and job.environment.environment_type == EnvironmentType.STAGING


@pytest.mark.parametrize("name, method, missing", [
    ("site-list", "POST", "sites.add_site"),
    ("site-detail", "DELETE", "sites.delete_site"),
    ("site-reset", "POST", "sites.change_site"),
    ("node-list", "POST", "nodes.add_node"),
    ("node-provision", "POST", "nodes.manage_node"),
    ("job-cancel", "POST", "jobs.change_job"),
    ("job-retry", "POST", "jobs.change_job"),
])
def test_a_developer_leaves_sites_nodes_and_jobs_to_operators(client_of, world, settings, tmp_path, name, method,
                                                             missing):
    before = snapshot(settings.DEPLOY_ARCHIVE_DIR)
    response = request(client_of(DEVELOPERS), world, ROUTE_BY_NAME[name], method, world.staging, tmp_path)
    assert missing in assert_permission_denied(response)["details"]["missing"]
    assert snapshot(settings.DEPLOY_ARCHIVE_DIR) == before


def test_an_operator_deploys_production(client_of, world):
    response = client_of(OPERATORS).post(f"/api/environments/{world.production.pk}/deploy",
                                         {"source_type": "git", "source_ref": "main"}, format="json")
    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=response.json()["job_id"]).environment == world.production
