import uuid

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import needs
from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.core.api_views import ChildListView, job_accepted
from apps.core.query_params import boolean_param, integer_param
from apps.core.schema import error_responses, ok
from apps.core.serializers import JobResponseSerializer, ResourceResetResponseSerializer
from apps.environments import held_mail, services, staging_holds
from apps.environments.filters import EnvironmentFilter
from apps.environments.models import Environment
from apps.environments.serializers import (
    AvailableUpdatesSerializer,
    CacheSettingsSerializer,
    CreateEnvironmentSerializer,
    DeployArchiveSerializer,
    DeployArchiveUploadSerializer,
    DeploySerializer,
    EnvironmentSerializer,
    GitRepositorySerializer,
    HeldMailSerializer,
    MagicLoginResponseSerializer,
    OutgoingAllowListSerializer,
    OutgoingRequestSerializer,
    PromoteSerializer,
    PromotionPlanSerializer,
    RollbackSerializer,
    StagingHoldsSerializer,
    UpdatesSerializer,
)
from apps.sites.models import Site

FINAL_BACKUP_PARAMETER = OpenApiParameter(
    "final_backup", bool, OpenApiParameter.QUERY, required=False, default=True,
    description="Take a full final backup of the environment first, kept for its retention (default). `false` opts out. "
    "Without backup storage configured the deletion goes ahead without one and its job log says so.",
)



@extend_schema_view(get=extend_schema(
    operation_id="listSiteEnvironments", tags=["Environments"], summary="List a site's environments",
    responses={200: ok(EnvironmentSerializer(many=True), "The site's environments."), **error_responses(401, 404)},
))


class SiteEnvironmentListView(ChildListView):
    """GET: the site's environments. POST: a new staging or clone environment, copied from another."""

    # A new environment is never production (the serializer refuses it); copying from production only reads it.
    required_permissions = {"GET": needs("environments.view_environment"), "POST": needs("environments.add_environment")}
    queryset = Environment.objects.none()  # for schema generation; get_queryset scopes it
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilter

    parent_model = Site
    parent_field = "site"
    ordering = ("created_at",)

    @extend_schema(
        operation_id="createEnvironment",
        tags=["Environments"],
        summary="Create a staging or clone environment",
        description=(
            "Creates the environment on its source's node and queues `env_create`: a full copy of the source "
            "environment (default: production) - code, uploads and database - with its own Linux user, PHP-FPM "
            "pool, database and preview URL; the source's URLs are rewritten to the new preview URL. "
            "`production` is refused: a site has exactly one."
        ),
        request=CreateEnvironmentSerializer,
        responses={202: ok(JobResponseSerializer, "Environment creation queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.create", resource_type="environment")
        get_object_or_404(Site, pk=id)  # 404 before validating the body, like every per-site path
        body = CreateEnvironmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = services.create_environment(
            site_id=id,
            name=data["name"],
            slug=data["slug"],
            environment_type=data["type"],
            source_environment_id=data.get("source_environment_id"),
            promotion_preset=data["promotion_preset"],
            expires_at=data.get("expires_at"),
            user=request.user,
        )
        return job_accepted(request, job, resource_id=job.environment_id)


@extend_schema_view(get=extend_schema(
    operation_id="getEnvironment", tags=["Environments"], summary="Get one environment",
    responses={200: ok(EnvironmentSerializer, "The environment."), **error_responses(401, 404)},
))


class EnvironmentDetailView(generics.RetrieveDestroyAPIView):
    required_permissions = {
        "GET": needs("environments.view_environment"),
        "DELETE": needs("environments.delete_environment", production_guard=True),
    }
    serializer_class = EnvironmentSerializer
    queryset = Environment.objects.all()
    lookup_url_kwarg = "id"

    @extend_schema(
        operation_id="deleteEnvironment",
        tags=["Environments"],
        summary="Delete a staging or clone environment",
        description="Queues `env_delete`: its server block, pool, database, files and user are removed from the "
        "node, then its records. Production is deleted with its site.",
        parameters=[FINAL_BACKUP_PARAMETER],
        responses={202: ok(JobResponseSerializer, "Deletion queued."), **error_responses(400, 401, 404, 409)},
    )
    def delete(self, request, id):
        audit.annotate(request, action="environment.delete", resource_type="environment", resource_id=id)
        final_backup = boolean_param(request, "final_backup", True)
        job = services.delete_environment(id, user=request.user, final_backup=final_backup)
        return job_accepted(request, job)


class EnvironmentResetView(APIView):
    required_permissions = {"POST": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="resetEnvironmentFailedState",
        tags=["Environments"],
        summary="Reset a failed environment to active",
        description="Allowed only from `failed`, with no job queued or running on it and its node in service.",
        request=None,
        responses={200: ok(ResourceResetResponseSerializer, "The resource is active again."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.reset", resource_type="environment", resource_id=id)
        environment = services.reset_environment(id)
        return Response({"success": True, "status": environment.status})


class EnvironmentMagicLoginView(APIView):
    required_permissions = {"POST": needs("environments.magic_login_environment", production_guard=True)}

    @extend_schema(
        operation_id="createMagicLogin",
        tags=["Environments"],
        summary="One-time wp-admin login link",
        description=(
            "Asks the node directly (no job; at most 10 s) for a login link that works once within 60 seconds "
            "and opens wp-admin as the site's administrator."
        ),
        request=None,
        responses={200: ok(MagicLoginResponseSerializer, "The link and when it expires."),
                   **error_responses(401, 404, 409, 502)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.magic_login", resource_type="environment", resource_id=id)
        return Response(services.magic_login(id))


class EnvironmentHeldMailView(APIView):
    # Held mail is what the environment's WordPress sent: customers' addresses and
    # order texts copied from production. As private as logging in to it.
    required_permissions = {"GET": needs("environments.magic_login_environment")}

    @extend_schema(
        operation_id="listHeldMail",
        tags=["Environments"],
        summary="Mail a non-production environment held back",
        description="Reads the latest held mails from the node (no job), newest first. Production holds none.",
        parameters=[OpenApiParameter(
            "limit", {"type": "integer", "minimum": 1, "maximum": held_mail.HELD_MAIL_MAX},
            description=f"At most this many (1-{held_mail.HELD_MAIL_MAX}, default {held_mail.HELD_MAIL_MAX}).",
        )],
        responses={200: ok(HeldMailSerializer(many=True), "Newest first."), **error_responses(400, 401, 404, 409, 502)},
    )
    def get(self, request, id):
        limit = integer_param(request, "limit", held_mail.HELD_MAIL_MAX, 1, held_mail.HELD_MAIL_MAX)
        return Response(HeldMailSerializer(held_mail.held_mail(id, limit=limit), many=True).data)


class EnvironmentHealthCheckView(APIView):
    required_permissions = {"POST": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="runEnvironmentHealthCheck",
        tags=["Environments"],
        summary="Check an environment's health",
        description="Queues `health_check`: HTTP 200 from its URL, WordPress installed, database reachable.",
        request=None,
        responses={202: ok(JobResponseSerializer, "Health check queued."), **error_responses(401, 404)},
    )
    def post(self, request, id):
        job = services.request_health_check(id, user=request.user)
        return job_accepted(request, job, action="environment.health_check", resource_type="environment", resource_id=id)


class EnvironmentDriftCheckView(APIView):
    # Reads production but changes nothing: a copy's developers may ask for it.
    required_permissions = {"POST": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="runDriftCheck",
        tags=["Environments"],
        summary="Run drift check",
        description=(
            "Queues `drift_check` for a staging or clone environment: its site's production is measured now (per "
            "table of the site's prefix: row count and a checksum in primary-key order; per path of the current "
            "release and of the uploads: size and SHA-256) and compared with the baseline taken when this "
            "environment was copied from production. `drifted`: production changed data a promotion would "
            "overwrite (a table the environment's promotion preset does not protect, or code); changes in "
            "protected tables and uploads are reported but leave it `clean`. The outcome is an immutable drift "
            "check record and the environment's `drift_status`, `drift_checked_at` and `last_drift_check_id`. "
            "409 `drift_no_baseline` for production itself or a copy without a baseline."
        ),
        request=None,
        responses={202: ok(JobResponseSerializer, "Drift check queued."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.drift_check", resource_type="environment", resource_id=id)
        job = services.request_drift_check(id, user=request.user)
        return job_accepted(request, job)


class EnvironmentRefreshView(APIView):
    required_permissions = {"POST": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="refreshEnvironmentFromProduction",
        tags=["Environments"],
        summary="Refresh a staging or clone environment from production",
        description=(
            "Queues `env_refresh`: production's tables that the environment's promotion preset protects (posts, "
            "comments, orders...) and its uploads are copied into the environment and production's URLs are "
            "rewritten to the environment's; its code, settings and every other table stay. Production's "
            "checksums, taken first, become the environment's new drift baseline (its `drift_status` is "
            "`unknown` until the next drift check). 409 `conflict` for production itself."
        ),
        request=None,
        responses={202: ok(JobResponseSerializer, "Refresh queued."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.refresh", resource_type="environment", resource_id=id)
        job = services.refresh_from_production(id, user=request.user)
        return job_accepted(request, job)


class EnvironmentPromoteView(APIView):
    # Writes production: the promote permission and manage_production, whatever the source is.
    required_permissions = {"POST": needs("environments.promote_environment", "environments.manage_production")}

    @extend_schema(
        operation_id="promoteEnvironment",
        tags=["Environments"],
        summary="Promote environment",
        description=(
            "Queues `env_promote`: this staging or clone environment's current release and the tables its promotion "
            "preset does not protect go into its site's production. The job checks drift again first, takes a "
            "full backup of production (`pre_promote`), loads the tables beside the live ones and switches them "
            "in one step with the release, checks production's health and swaps back when it fails "
            "(`promotion_rolled_back`). Protected tables (posts, comments, orders...) and uploads are never "
            "written. Refused before anything is queued (409) when this environment's drift is `drifted` "
            "(`promotion_drifted`) or `unknown` (`promotion_drift_unknown`), either environment is not active, "
            "this is production (`promotion_source_is_production`) or the target is not its site's production "
            "(`promotion_target_invalid`). See `GET /api/environments/{id}/promotion-plan` for what it would do."
        ),
        request=PromoteSerializer,
        responses={202: ok(JobResponseSerializer, "Promotion queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        body = PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        audit.annotate(request, action="environment.promote", resource_type="environment", resource_id=id,
                       details={"target_environment_id": str(body.validated_data["target_environment_id"])})
        job = services.request_promote(id, body.validated_data["target_environment_id"], user=request.user)
        return job_accepted(request, job)


class EnvironmentPromotionPlanView(APIView):
    required_permissions = {"GET": needs("environments.view_environment")}

    @extend_schema(
        operation_id="getPromotionPlan",
        tags=["Environments"],
        summary="What a promotion into production would do",
        description=(
            "Asked of the node now (read-only, may take a while on a large site): for every table of either "
            "environment, whether the promotion overwrites it (rows in this environment and in production, and "
            "whether they are identical once URLs are rewritten), creates it, keeps it because the preset protects "
            "it, or keeps it because only production has it; the code files added, changed and removed between "
            "the two current releases; what will not go live (protected tables where this environment differs: "
            "posts, comments or orders made here stay out); and the drift state that gates the promotion. "
            "Beyond the reference contract."
        ),
        parameters=[OpenApiParameter("target", uuid.UUID, OpenApiParameter.QUERY, required=True,
                                     description="The id of the site's production environment.")],
        responses={200: ok(PromotionPlanSerializer, "The plan."), **error_responses(400, 401, 404, 409, 502)},
    )
    def get(self, request, id):
        target = request.query_params.get("target", "")
        try:
            target_id = uuid.UUID(target)
        except ValueError:
            raise ApiError("bad_request", "Give target: the id of the site's production environment.",
                           {"fields": {"target": ["a UUID is required"]}}) from None
        return Response(PromotionPlanSerializer(services.promotion_plan(id, target_id)).data)


class EnvironmentDeployView(APIView):
    required_permissions = {"POST": needs("environments.deploy_environment", production_guard=True)}

    @extend_schema(
        operation_id="deployEnvironment",
        tags=["Environments"],
        summary="Deploy a new release",
        description=(
            "Queues `env_deploy`: builds a new release from a git ref (`source_ref` is a branch, tag or commit of "
            "the environment's repository, or `<repository>#<ref>`) or from an uploaded archive (`source_ref` is "
            "its id, see `POST /api/environments/{id}/deploy-archives`). The source holds a wp-content tree or a "
            "whole WordPress tree. WordPress must load from the new release before it is switched to atomically; "
            "its health is checked and an unhealthy release is rolled back by itself."
        ),
        request=DeploySerializer,
        responses={202: ok(JobResponseSerializer, "Deploy queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        body = DeploySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        audit.annotate(request, action="environment.deploy", resource_type="environment", resource_id=id)
        job = services.deploy(id, user=request.user, **body.validated_data)
        return job_accepted(request, job)


class EnvironmentRollbackView(APIView):
    required_permissions = {"POST": needs("environments.deploy_environment", production_guard=True)}

    @extend_schema(
        operation_id="rollbackEnvironment",
        tags=["Environments"],
        summary="Roll back to an earlier healthy release",
        request=RollbackSerializer,
        responses={202: ok(JobResponseSerializer, "Rollback queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        audit.annotate(request, action="environment.rollback", resource_type="environment", resource_id=id)
        job = services.rollback(id, body.validated_data["release_id"], user=request.user)
        return job_accepted(request, job)


class EnvironmentDeployArchiveView(APIView):
    # Checked before the body is read: a refused client cannot make the panel store an upload.
    required_permissions = {"POST": needs("environments.deploy_environment", production_guard=True)}
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="uploadDeployArchive",
        tags=["Environments"],
        summary="Upload an archive to deploy",
        description=(
            "Stores a tar or zip archive (multipart field `file`) for a later `source_type: upload` deploy, after "
            "checking every entry: no absolute paths, no `..`, no links leading out of the archive, no hard links "
            "or special files, a recognised layout, and the size limits. A refused archive is not stored."
        ),
        request={"multipart/form-data": DeployArchiveUploadSerializer},
        responses={201: ok(DeployArchiveSerializer, "Stored."), **error_responses(400, 401, 404, 413, 415)},
    )
    def post(self, request, id):
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        # Refused before the body is read: the multipart overhead is small next to the limit.
        if declared > settings.DEPLOY_ARCHIVE_MAX_BYTES + 64 * 1024:
            raise ApiError("upload_too_large", f"The archive is larger than {settings.DEPLOY_ARCHIVE_MAX_BYTES} bytes.",
                           {"max_bytes": settings.DEPLOY_ARCHIVE_MAX_BYTES})
        upload = request.FILES.get("file")
        if upload is None:
            raise ApiError("bad_request", "Send the archive as the multipart field `file`.",
                           {"fields": {"file": ["This field is required."]}})
        audit.annotate(request, action="environment.upload_archive", resource_type="environment", resource_id=id)
        archive = services.store_deploy_archive(id, upload, filename=upload.name or "", user=request.user)
        return Response(DeployArchiveSerializer(archive).data, status=201)


class EnvironmentGitRepositoryView(APIView):
    required_permissions = {
        "GET": needs("environments.view_environment"),
        "PUT": needs("environments.deploy_environment", production_guard=True),
    }

    def _answer(self, environment):
        return Response({"repository_url": environment.git_repository, "deploy_key_public": environment.deploy_key_public})

    @extend_schema(
        operation_id="getEnvironmentGitRepository",
        tags=["Environments"],
        summary="The environment's git repository and deploy key",
        responses={200: ok(GitRepositorySerializer, "The setting."), **error_responses(401, 404)},
    )
    def get(self, request, id):
        return self._answer(get_object_or_404(Environment, pk=id))

    @extend_schema(
        operation_id="setEnvironmentGitRepository",
        tags=["Environments"],
        summary="Set the git repository deploys fetch from",
        description="The first time a repository is set, the environment gets its own deploy key (Ed25519); "
                    "give its public half to the repository host as a read-only deploy key.",
        request=GitRepositorySerializer,
        responses={200: ok(GitRepositorySerializer, "The new setting."), **error_responses(400, 401, 404)},
    )
    def put(self, request, id):
        body = GitRepositorySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        audit.annotate(request, action="environment.set_git_repository", resource_type="environment", resource_id=id)
        return self._answer(services.set_git_repository(
            id, body.validated_data["repository_url"], new_deploy_key=body.validated_data["new_deploy_key"],
            user=request.user,
        ))


class EnvironmentCacheView(APIView):
    required_permissions = {"PATCH": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="updateEnvironmentCache",
        tags=["Caching"],
        summary="Turn the page cache or the object cache on or off",
        description=(
            "Queues `env_cache_toggle`: the environment's Nginx server block is rendered again with or without "
            "the FastCGI page cache (checked with `nginx -t`, replaced atomically), the Redis object cache "
            "drop-in is installed or removed, and the environment's caches are purged. The environment's "
            "flags change once the node has done it. Fields left out stay as they are."
        ),
        request=CacheSettingsSerializer,
        responses={202: ok(JobResponseSerializer, "Change queued."), **error_responses(400, 401, 404, 409)},
    )
    def patch(self, request, id):
        audit.annotate(request, action="environment.cache_toggle", resource_type="environment", resource_id=id)
        get_object_or_404(Environment, pk=id)
        body = CacheSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.set_cache(id, user=request.user, **body.validated_data)
        return job_accepted(request, job)


class EnvironmentCachePurgeView(APIView):
    required_permissions = {"POST": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="purgeEnvironmentCache",
        tags=["Caching"],
        summary="Purge the environment's caches",
        description=(
            "Queues `cache_purge`: the environment's FastCGI page cache entries and its Redis keys (those under "
            "its own prefix, found with SCAN and removed with UNLINK) are removed; other environments' stay."
        ),
        request=None,
        responses={202: ok(JobResponseSerializer, "Purge queued."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.cache_purge", resource_type="environment", resource_id=id)
        job = services.purge_cache(id, user=request.user)
        return job_accepted(request, job)


class EnvironmentStagingHoldsView(APIView):
    # What the holds show is the copy's shop: as private as its held mail.
    required_permissions = {"GET": needs("environments.magic_login_environment")}

    @extend_schema(
        operation_id="getStagingHolds",
        tags=["Environments"],
        summary="What a staging or clone environment holds back",
        description=(
            "Reads from the node (no job) which holds the staging must-use plugin has on (WP-Cron, Action "
            "Scheduler, payment gateways, outgoing requests, mail, search engines), the due work held back, the "
            "payment gateways' settings as WordPress reads them and the outgoing policy. Production holds nothing "
            "(409 conflict)."
        ),
        responses={200: ok(StagingHoldsSerializer, "The holds."), **error_responses(401, 404, 409, 502)},
    )
    def get(self, request, id):
        return Response(StagingHoldsSerializer(staging_holds.staging_holds(id)).data)


class EnvironmentOutgoingRequestsView(APIView):
    required_permissions = {"GET": needs("environments.magic_login_environment")}

    @extend_schema(
        operation_id="listOutgoingRequests",
        tags=["Environments"],
        summary="Outgoing HTTP requests a staging or clone environment made",
        description="Reads the environment's request log from the node (no job), newest first: host, path, time, "
                    "blocked or let through. Production keeps none (409 conflict).",
        parameters=[OpenApiParameter(
            "limit", {"type": "integer", "minimum": 1, "maximum": staging_holds.REQUESTS_MAX},
            description=f"At most this many (1-{staging_holds.REQUESTS_MAX}, default {staging_holds.REQUESTS_MAX}).",
        )],
        responses={200: ok(OutgoingRequestSerializer(many=True), "Newest first."),
                   **error_responses(400, 401, 404, 409, 502)},
    )
    def get(self, request, id):
        limit = integer_param(request, "limit", staging_holds.REQUESTS_MAX, 1, staging_holds.REQUESTS_MAX)
        return Response(OutgoingRequestSerializer(staging_holds.outgoing_requests(id, limit=limit), many=True).data)


class EnvironmentRunScheduledView(APIView):
    required_permissions = {"POST": needs("environments.change_environment", production_guard=True)}

    @extend_schema(
        operation_id="runScheduledWork",
        tags=["Environments"],
        summary="Run a staging or clone environment's held scheduled work once",
        description=(
            "Queues `env_run_scheduled`: the due WP-Cron events and the Action Scheduler's queue run once, with "
            "the payment and outgoing-request holds still on. Production holds nothing (409 conflict)."
        ),
        request=None,
        responses={202: ok(JobResponseSerializer, "Queued."), **error_responses(401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.run_scheduled", resource_type="environment", resource_id=id)
        return job_accepted(request, services.run_scheduled(id, user=request.user))


class EnvironmentOutgoingAllowListView(APIView):
    required_permissions = {
        "GET": needs("environments.view_environment"),
        "PUT": needs("environments.change_environment", production_guard=True),
    }

    @extend_schema(
        operation_id="getOutgoingAllowList",
        tags=["Environments"],
        summary="Hosts a staging or clone environment may reach",
        responses={200: ok(OutgoingAllowListSerializer, "The allow-list."), **error_responses(401, 404)},
    )
    def get(self, request, id):
        return Response({"hosts": list(get_object_or_404(Environment, pk=id).outgoing_allowed_hosts or [])})

    @extend_schema(
        operation_id="setOutgoingAllowList",
        tags=["Environments"],
        summary="Set the hosts a staging or clone environment may reach",
        description="Written to the environment's wp-config.php on its node at once (no job); kept only if that "
                    "worked. Production has no allow-list (409 conflict).",
        request=OutgoingAllowListSerializer,
        responses={200: ok(OutgoingAllowListSerializer, "The new allow-list."),
                   **error_responses(400, 401, 404, 409, 502)},
    )
    def put(self, request, id):
        body = OutgoingAllowListSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        audit.annotate(request, action="environment.set_outgoing_allow_list", resource_type="environment",
                       resource_id=id)
        environment = services.set_outgoing_allowed_hosts(id, body.validated_data["hosts"], user=request.user)
        return Response({"hosts": environment.outgoing_allowed_hosts})


class EnvironmentUpdatesView(APIView):
    required_permissions = {
        "GET": needs("environments.view_environment"),
        "POST": needs("environments.deploy_environment", production_guard=True),
    }

    @extend_schema(
        operation_id="listEnvironmentUpdates",
        tags=["Environments"],
        summary="Updates on offer",
        description=(
            "Asks the node now (no job): WordPress's own update check against the configured update service. "
            "Core and every plugin and theme with the installed version and the version on offer (null when "
            "there is none)."
        ),
        responses={200: ok(AvailableUpdatesSerializer, "What is installed and what is on offer."),
                   **error_responses(401, 404, 409, 502)},
    )
    def get(self, request, id):
        answer = services.available_updates(id)
        return Response(AvailableUpdatesSerializer({key: answer.get(key) for key in ("core", "plugins", "themes")}).data)

    @extend_schema(
        operation_id="applyEnvironmentUpdates",
        tags=["Environments"],
        summary="Update WordPress core, plugins or themes",
        description=(
            "Queues `env_update`: first a fresh backup of the database (without backup storage configured: "
            "409 `backup_storage_not_configured`, nothing queued), then WordPress's own upgrader installs what "
            "the update service offers for the scope into a new release, which WordPress must load from before "
            "it is switched to; a core update then upgrades the database. The health check and a comparison "
            "of the home page, the latest post and the login page before and after decide: an update that "
            "breaks a page or empties it is rolled back (with the pre-update database after a core update)."
        ),
        request=UpdatesSerializer,
        responses={202: ok(JobResponseSerializer, "Update queued."), **error_responses(400, 401, 404, 409)},
    )
    def post(self, request, id):
        audit.annotate(request, action="environment.update", resource_type="environment", resource_id=id)
        get_object_or_404(Environment, pk=id)  # 404 before validating the body
        body = UpdatesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.request_update(id, body.validated_data["scope"], user=request.user)
        return job_accepted(request, job)
