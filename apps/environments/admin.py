import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.accounts.permissions import (
    MANAGE_PRODUCTION,
    guarded,
    may_act_on_environment,
    require_for_environment,
)
from apps.audit import services as audit
from apps.backups.models import Backup
from apps.core.admin_helpers import (
    PanelModelAdmin,
    ResetFailedStateMixin,
    ReadOnlyAdminMixin,
    admin_url,
    change_link,
    changelist_link,
    confirm_action,
    form_errors_from_serializer,
    render_service_form,
    run_job_action,
    run_service_action,
    status_badge,
)
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.domains.models import Domain
from apps.environments import held_mail, services
from apps.environments.choices import EnvironmentType, PromotionPreset, ReleaseHealth
from apps.environments.models import DeployArchive, DriftCheck, Environment, Release
from apps.environments.serializers import CreateEnvironmentSerializer
from apps.jobs.models import Job


class CloneEnvironmentForm(forms.Form):
    """The admin's "Clone environment": validated exactly like
    ``POST /api/sites/{id}/environments``, the source being the environment shown."""

    name = forms.CharField(max_length=200, strip=False, help_text="Shown in the panel.")
    slug = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and inner dashes, at most 63; unique within the site.",
    )
    type = forms.ChoiceField(
        choices=[(EnvironmentType.STAGING, "Staging"), (EnvironmentType.CLONE, "Clone")],
        initial=EnvironmentType.STAGING,
    )
    promotion_preset = forms.ChoiceField(choices=PromotionPreset.choices, initial=PromotionPreset.CONTENT_PROTECT)

    def clean(self):
        cleaned = super().clean()
        given = {key: cleaned[key] for key in self.fields if cleaned.get(key) not in (None, "")}
        body = CreateEnvironmentSerializer(data=given, partial=True)
        if not body.is_valid():
            form_errors_from_serializer(self, body.errors)
        else:
            # The API's normalisation (a trimmed name) is what the service gets.
            cleaned.update(body.validated_data)
        return cleaned


class DeployForm(forms.Form):
    """The admin's "Deploy": a git ref, or an archive to upload and deploy."""

    git_ref = forms.CharField(
        required=False, max_length=500, label="Git ref",
        help_text="A branch, tag or commit of the environment's repository (or <repository>#<ref>).",
    )
    archive = forms.FileField(
        required=False, help_text="Or a tar/zip archive holding a wp-content tree or a whole WordPress tree.",
    )

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("git_ref")) == bool(cleaned.get("archive")):
            raise forms.ValidationError("Give either a git ref or an archive.")
        return cleaned


class GitRepositoryForm(forms.Form):
    repository_url = forms.CharField(
        required=False, max_length=500, label="Repository URL",
        help_text="https://, ssh:// or git@host:path URL; empty to unset. No user name, password or "
                  "token in it: a private repository is reached over ssh with the deploy key below.",
    )
    new_deploy_key = forms.BooleanField(
        required=False, label="Make a new deploy key",
        help_text="The old key stops being used; replace it at the repository host.",
    )


@admin.register(Environment)
class EnvironmentAdmin(ResetFailedStateMixin, PanelModelAdmin):
    """Environments are created, changed and deleted by jobs; the admin shows
    them, renames them, resets a failed one, runs a health check and opens
    WordPress's admin with a one-time login link."""

    list_display = (
        "__str__", "site_link", "environment_type", "status_column", "drift_column", "node",
        "preview_link", "wp_admin_column", "created_at",
    )
    list_display_links = ("__str__",)
    list_filter = ("status", "environment_type", "drift_status", "promotion_preset", "node")
    search_fields = ("slug", "name", "site__slug", "site__name", "preview_url")
    list_select_related = ("site", "node")
    ordering = ("site__slug", "slug")
    fieldsets = (
        (None, {"fields": ("name", "slug", "site_link", "environment_type", "status_column", "status_reason", "related")}),
        ("Hosting", {"fields": ("node", "preview_link", "primary_domain", "current_release", "source_environment", "expires_at")}),
        ("Deploys", {"fields": ("git_repository", "deploy_key_public")}),
        (
            "Promotion and caching",
            {"fields": ("promotion_preset", "drift_column", "drift_checked_at", "last_drift_check",
                        "fastcgi_cache_enabled", "redis_cache_enabled")},
        ),
        ("Record", {"fields": ("id", "state_version", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "slug", "site_link", "environment_type", "status_column", "status_reason", "related", "node",
        "preview_link", "primary_domain", "current_release", "source_environment", "expires_at",
        "promotion_preset", "drift_column", "drift_checked_at", "last_drift_check", "fastcgi_cache_enabled",
        "redis_cache_enabled", "id", "state_version", "created_at", "updated_at", "git_repository", "deploy_key_public",
    )
    actions = (
        "reset_failed_state", "run_health_check", "open_wordpress_admin", "clone_environment", "deploy_environment",
        "edit_git_repository", "show_held_mail", "show_releases", "delete_environments",
    )
    object_actions = (
        ("open_wordpress_admin", "Open WordPress admin"),
        ("deploy_environment", "Deploy"),
        ("edit_git_repository", "Git repository"),
        ("clone_environment", "Clone environment"),
        ("show_held_mail", "Held mail"),
        ("show_releases", "Releases and rollback"),
        ("run_health_check", "Run health check"),
        ("reset_failed_state", "Reset failed state"),
        ("delete_environments", "Delete environment"),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "site", "node", "primary_domain", "current_release", "source_environment__site", "last_drift_check"
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Site", ordering="site__slug")
    def site_link(self, obj):
        return change_link(obj.site, obj.site.slug)

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Drift", ordering="drift_status")
    def drift_column(self, obj):
        return status_badge(obj.drift_status, obj.get_drift_status_display())

    @admin.display(description="Preview URL")
    def preview_link(self, obj):
        return format_html('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', obj.preview_url, obj.preview_url)

    @admin.display(description="Related")
    def related(self, obj):
        return format_html(
            "{} · {} · {} · {} · {}",
            changelist_link(Backup, "backups", environment=obj.pk),
            changelist_link(Domain, "domains", environment=obj.pk),
            changelist_link(Job, "jobs", environment=obj.pk),
            changelist_link(Release, "releases", environment=obj.pk),
            changelist_link(DriftCheck, "drift checks", environment=obj.pk),
        )

    reset_audit_action = "environment.reset"
    reset_permission = "environments.change_environment"

    def reset_service(self, environment):
        return services.reset_environment(environment.pk)

    def check_reset_allowed(self, request, environment):
        require_for_environment(request.user, environment, self.reset_permission)

    def has_change_permission(self, request, obj=None):
        # Renaming production is acting on production, like everything else the API guards.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_act_on_environment(request.user, obj))

    def object_actions_for(self, request, obj):
        hidden = set()
        if obj.status != LifecycleStatus.FAILED:
            hidden.add("reset_failed_state")
        if obj.status != LifecycleStatus.ACTIVE:
            hidden.update({"open_wordpress_admin", "clone_environment", "show_held_mail", "deploy_environment"})
        if obj.environment_type == EnvironmentType.PRODUCTION:
            hidden.add("show_held_mail")  # production sends its mail; there is never any to read
            hidden.add("delete_environments")  # goes only with its site
            if not request.user.has_perm(MANAGE_PRODUCTION):
                hidden.update({"open_wordpress_admin", "deploy_environment", "edit_git_repository",
                               "reset_failed_state", "run_health_check"})
        return [(name, label) for name, label in super().object_actions_for(request, obj) if name not in hidden]

    # --- health check ---------------------------------------------------------

    def has_check_permission(self, request):
        return request.user.has_perm("environments.change_environment")

    @admin.action(description="Run health check", permissions=["check"])
    def run_health_check(self, request, queryset):
        return run_job_action(
            self,
            request,
            queryset,
            action="environment.health_check",
            call=guarded(request.user, "environments.change_environment",
                         lambda environment: services.request_health_check(environment.pk, user=request.user)),
            label=lambda obj: f"Environment {obj}",
        )

    # --- magic login -------------------------------------------------------------

    def has_login_permission(self, request):
        return request.user.has_perm("environments.magic_login_environment")

    @admin.action(description="Open WordPress admin (one selected environment)", permissions=["login"])
    def open_wordpress_admin(self, request, queryset):
        environments = list(queryset[:2])
        if len(environments) != 1:
            self.message_user(request, "Select exactly one environment to open its WordPress admin.", messages.ERROR)
            return None
        return self._magic_login_redirect(request, environments[0])

    # --- clone ----------------------------------------------------------------

    def has_clone_permission(self, request):
        return request.user.has_perm("environments.add_environment")

    @admin.action(description="Clone environment (one selected environment)", permissions=["clone"])
    def clone_environment(self, request, queryset):
        # The action only picks the source; the form has its own page (and URL)
        # so a validation error can be shown and the form posted again.
        return self._one_environment_page(request, queryset, "clone", "to clone")

    def clone_view(self, request, object_id):
        """A form that calls services.create_environment with this environment as source."""
        if not self.has_clone_permission(request):
            raise PermissionDenied
        source = self.get_object(request, object_id)
        if source is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        form = CloneEnvironmentForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            redirect = run_job_action(
                self,
                request,
                [source],
                action="environment.create",
                call=lambda environment: services.create_environment(
                    site_id=environment.site_id, source_environment_id=environment.pk, name=data["name"],
                    slug=data["slug"], environment_type=data["type"], promotion_preset=data["promotion_preset"],
                    user=request.user,
                ),
                label=lambda environment: f"Clone of {environment} as {data['slug']}",
                done="copy queued as",
            )
            if redirect is not None:
                return redirect
            # Refused by the service: its message is shown above the form, kept as typed.
        return render_service_form(
            self, request, form, title=f"Clone environment {source}", submit="Clone",
            intro=f"Copies {source} (code, uploads and database) into a new environment of site "
                  f"{source.site.slug} on node {source.node.name}, with its own preview URL. Mail from the "
                  "copy is held and search engines are kept away. You are taken to the job to follow it.",
        )

    # --- deletion ----------------------------------------------------------------

    def has_remove_permission(self, request):
        return request.user.has_perm("environments.delete_environment")

    @admin.action(description="Delete selected staging/clone environments (from their nodes too)",
                  permissions=["remove"])
    def delete_environments(self, request, queryset):
        confirmation = confirm_action(
            self, request, queryset,
            title="Delete environment",
            question="Delete these environments? Each one is removed from its node: Linux user, PHP-FPM pool, "
                     "database, server block and files, then its records in the panel. A production environment "
                     "goes only with its site.",
            warnings=["This cannot be undone."],
            button="Yes, delete",
            details=lambda environment: [
                ("type", environment.get_environment_type_display()),
                ("node", environment.node.name),
                ("preview URL", environment.preview_url),
            ],
        )
        if confirmation is not None:
            return confirmation
        return run_job_action(
            self, request, queryset,
            action="environment.delete",
            call=guarded(request.user, "environments.delete_environment",
                         lambda environment: services.delete_environment(environment.pk, user=request.user)),
            label=lambda environment: f"Environment {environment}",
            done="being deleted by",
        )

    # --- deploys ----------------------------------------------------------------

    def has_deploy_permission(self, request):
        return request.user.has_perm("environments.deploy_environment")

    @admin.action(description="Deploy (one selected environment)", permissions=["deploy"])
    def deploy_environment(self, request, queryset):
        return self._one_environment_page(request, queryset, "deploy", "to deploy to")

    @admin.action(description="Git repository and deploy key (one selected environment)", permissions=["deploy"])
    def edit_git_repository(self, request, queryset):
        return self._one_environment_page(request, queryset, "git_repository", "to set its repository")

    def deploy_view(self, request, object_id):
        """A git ref or an uploaded archive -> services (store the archive, queue env_deploy)."""
        if not self.has_deploy_permission(request):
            raise PermissionDenied
        environment = self.get_object(request, object_id)
        if environment is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if not may_act_on_environment(request.user, environment, "environments.deploy_environment"):
            raise PermissionDenied
        form = DeployForm(request.POST, request.FILES) if request.method == "POST" else DeployForm()
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data

            def queue(target):
                if data["archive"]:
                    stored = services.store_deploy_archive(target.pk, data["archive"], filename=data["archive"].name,
                                                           user=request.user)
                    return services.deploy(target.pk, source_type="upload", source_ref=str(stored.pk), user=request.user)
                return services.deploy(target.pk, source_type="git", source_ref=data["git_ref"].strip(),
                                       user=request.user)

            redirect = run_job_action(self, request, [environment], action="environment.deploy", call=queue,
                                      label=lambda target: f"Deploy to {target}", done="deploy queued as")
            if redirect is not None:
                return redirect
        repository = environment.git_repository or "none set (give <repository>#<ref>)"
        return render_service_form(
            self, request, form, title=f"Deploy to {environment}", submit="Deploy",
            intro=f"Builds a new release from a git ref (repository: {repository}) or from an archive, checks that "
                  "WordPress loads from it, switches to it and checks its health; an unhealthy release is rolled "
                  "back by itself. You are taken to the job to follow it.",
        )

    def git_repository_view(self, request, object_id):
        """Set the repository git deploys fetch from; shows the environment's deploy key."""
        if not self.has_deploy_permission(request):
            raise PermissionDenied
        environment = self.get_object(request, object_id)
        if environment is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if not may_act_on_environment(request.user, environment, "environments.deploy_environment"):
            raise PermissionDenied
        initial = {"repository_url": environment.git_repository}
        form = GitRepositoryForm(request.POST, initial=initial) if request.method == "POST" else GitRepositoryForm(initial=initial)
        if request.method == "POST" and form.is_valid():
            url, new_key = form.cleaned_data["repository_url"], form.cleaned_data["new_deploy_key"]
            run_service_action(
                self, request, [environment], action="environment.set_git_repository",
                call=lambda target: services.set_git_repository(target.pk, url, new_deploy_key=new_key,
                                                                user=request.user),
                done=lambda changed: f"repository set to {changed.git_repository or '(none)'}.",
            )
            environment.refresh_from_db()
        return render_service_form(
            self, request, form, title=f"Git repository of {environment}", submit="Save",
            intro="Git deploys fetch from this repository. For an ssh repository, add the deploy key below to "
                  "the repository host as a read-only deploy key (it is made when a repository is first set).",
            public_key=environment.deploy_key_public,
            public_key_intro="This environment's deploy key:",
        )

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/deploy/",
                self.admin_site.admin_view(self.deploy_view),
                name=f"{opts.app_label}_{opts.model_name}_deploy",
            ),
            path(
                "<path:object_id>/git-repository/",
                self.admin_site.admin_view(self.git_repository_view),
                name=f"{opts.app_label}_{opts.model_name}_git_repository",
            ),
            path(
                "<path:object_id>/clone/",
                self.admin_site.admin_view(self.clone_view),
                name=f"{opts.app_label}_{opts.model_name}_clone",
            ),
            path(
                "<path:object_id>/held-mail/",
                self.admin_site.admin_view(self.held_mail_view),
                name=f"{opts.app_label}_{opts.model_name}_held_mail",
            ),
            path(
                "<path:object_id>/releases/",
                self.admin_site.admin_view(self.releases_view),
                name=f"{opts.app_label}_{opts.model_name}_releases",
            ),
            path(
                "<path:object_id>/wp-admin/",
                self.admin_site.admin_view(self.wp_admin_view),
                name=f"{opts.app_label}_{opts.model_name}_wp_admin",
            ),
            *super().get_urls(),
        ]

    # --- held mail ------------------------------------------------------------

    def has_held_mail_permission(self, request):
        # Held mail is production's customers' mail (addresses, order texts):
        # the same permission as logging in to the environment's WordPress.
        return request.user.has_perm("environments.magic_login_environment")

    @admin.action(description="Show held mail (one selected environment)", permissions=["held_mail"])
    def show_held_mail(self, request, queryset):
        return self._one_environment_page(request, queryset, "held_mail", "to read its held mail")

    def held_mail_view(self, request, object_id):
        """The latest mails the environment held back, read from its node on each visit."""
        if not self.has_held_mail_permission(request):
            raise PermissionDenied
        environment = self.get_object(request, object_id)
        if environment is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        mails, error = [], ""
        try:
            mails = held_mail.held_mail(environment.pk, limit=held_mail.HELD_MAIL_MAX)
        except ApiError as exc:
            error = exc.message
        return self._environment_page(request, environment, "admin/environments/held_mail.html", {
            "title": f"Held mail of {environment}",
            "mails": mails,
            "error": error,
            "limit": held_mail.HELD_MAIL_MAX,
            "is_production": environment.environment_type == EnvironmentType.PRODUCTION,
        })

    # --- releases and rollback --------------------------------------------------

    def has_rollback_permission(self, request):
        return request.user.has_perm("environments.deploy_environment")

    @admin.action(description="Releases and rollback (one selected environment)", permissions=["rollback"])
    def show_releases(self, request, queryset):
        return self._one_environment_page(request, queryset, "releases", "to see its releases")

    def releases_view(self, request, object_id):
        """The environment's releases, newest first, each healthy one with a
        button that rolls the environment back to it (POST release_id)."""
        if not self.has_rollback_permission(request):
            raise PermissionDenied
        environment = self.get_object(request, object_id)
        if environment is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        opts = self.model._meta
        here = reverse(f"admin:{opts.app_label}_{opts.model_name}_releases", args=(environment.pk,))
        if request.method == "POST":
            release = environment.releases.filter(pk=_uuid_or_none(request.POST.get("release_id"))).first()
            if release is None:
                self.message_user(request, "That release no longer exists; pick one from the list.", messages.ERROR)
                return HttpResponseRedirect(here)
            # Refused (unhealthy release, environment busy): the message shows on this page again.
            return queue_rollback(self, request, release) or HttpResponseRedirect(here)
        return self._environment_page(request, environment, "admin/environments/releases.html", {
            "title": f"Releases of {environment}",
            "releases": list(environment.releases.order_by("-created_at")[:RELEASES_SHOWN]),
            "shown": RELEASES_SHOWN,
            "can_roll_back": environment.status == LifecycleStatus.ACTIVE
            and may_act_on_environment(request.user, environment, "environments.deploy_environment"),
        })

    def _one_environment_page(self, request, queryset, view, purpose):
        """An action that works on one environment: to that environment's page ``view``."""
        environments = list(queryset[:2])
        if len(environments) != 1:
            self.message_user(request, f"Select exactly one environment {purpose}.", messages.ERROR)
            return None
        opts = self.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=(environments[0].pk,))
        return HttpResponseRedirect(url)

    def _environment_page(self, request, environment, template, extra):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": environment,
            "has_view_permission": self.has_view_permission(request, environment),
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def wp_admin_view(self, request, object_id):
        """The list's "Open" button: POST only (it creates a login link), CSRF-checked."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_login_permission(request):
            raise PermissionDenied
        environment = self.get_object(request, object_id)
        if environment is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        return self._magic_login_redirect(request, environment, back=admin_url(self.model, "changelist"))

    def _magic_login_redirect(self, request, environment, back=None):
        """Ask the node for a one-time login link and send the browser there;
        on failure say why and return to the environment (or ``back``)."""
        try:
            with audit.action(audit.Actor.of_request(request), "environment.magic_login", resource=environment,
                              details={"via": "admin"}):
                require_for_environment(request.user, environment, "environments.magic_login_environment")
                answer = services.magic_login(environment.pk)
        except ApiError as exc:
            self.message_user(request, f"Environment {environment}: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(back or admin_url(environment))
        # The link is a one-time secret: it goes only into this redirect, never into the audit log.
        return HttpResponseRedirect(answer["login_url"])

    @admin.display(description="WordPress admin")
    def wp_admin_column(self, obj):
        if obj.status != LifecycleStatus.ACTIVE:
            return "-"
        # A button of the list's own form (which carries the CSRF token), posting to this row's view.
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            'title="Log in to WordPress with a one-time link">Open</button>',
            reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_wp_admin", args=(obj.pk,)),
        )


RELEASES_SHOWN = 20


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def queue_rollback(modeladmin, request, release):
    """Both admin doors to a rollback (the release's action, the environment's
    release list) go through here: services.rollback decides, the attempt is
    audited on the environment like the API's, and a queued job is shown."""
    return run_job_action(
        modeladmin,
        request,
        [release.environment],
        action="environment.rollback",
        call=guarded(request.user, "environments.deploy_environment",
                     lambda environment: services.rollback(environment.pk, release.pk, user=request.user)),
        label=lambda environment: f"Environment {environment}, release {release.directory}",
        done="rollback queued as",
    )


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Releases are made by deploys and clones; the admin shows them and rolls
    an environment back to one of them."""

    actions = ("rollback_to_release",)
    object_actions = (("rollback_to_release", "Roll back to this release"),)
    list_display = ("directory", "environment_link", "source_type", "source_ref", "health_column", "created_at")
    list_filter = ("health", "source_type")
    search_fields = ("directory", "source_ref", "environment__slug", "environment__site__slug")
    list_select_related = ("environment__site",)
    show_full_result_count = False
    fields = ("id", "environment_link", "directory", "source_type", "source_ref", "health_column",
              "health_checked_at", "state_version", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)

    @admin.display(description="Health", ordering="health")
    def health_column(self, obj):
        return status_badge(obj.health, obj.get_health_display())

    def has_rollback_permission(self, request):
        return request.user.has_perm("environments.deploy_environment")

    def object_actions_for(self, request, obj):
        # Offered where it can work; the changelist action still lets the
        # service refuse anything else, with its reason.
        if obj.health != ReleaseHealth.HEALTHY or obj.environment.current_release_id == obj.pk:
            return []
        if not may_act_on_environment(request.user, obj.environment):
            return []
        return super().object_actions_for(request, obj)

    @admin.action(description="Roll back to this release (one selected release)", permissions=["rollback"])
    def rollback_to_release(self, request, queryset):
        releases = list(queryset.select_related("environment__site", "environment__current_release")[:2])
        if len(releases) != 1:
            self.message_user(request, "Select exactly one release to roll back to.", messages.ERROR)
            return None
        release = releases[0]
        environment = release.environment
        confirmation = confirm_action(
            self, request, releases,
            title="Roll back to this release",
            question=f"Make this release the live code of environment {environment} again? The environment's "
                     "current code is switched to it, PHP-FPM reloaded and its page cache purged; the database "
                     "and uploads are not changed.",
            button="Yes, roll back",
            details=lambda obj: [
                ("environment", str(environment)),
                ("live release now", environment.current_release.directory if environment.current_release else "none"),
                ("source", f"{obj.get_source_type_display()} {obj.source_ref}"),
                ("health", obj.get_health_display()),
            ],
        )
        if confirmation is not None:
            return confirmation
        response = queue_rollback(self, request, release)
        queued = response is not None and response.url.startswith(admin_url(Job, "changelist"))
        if queued:
            return response
        if request.POST.get("_return_to_object"):
            # Refused from the release's own page: back there, not to the environment's.
            return HttpResponseRedirect(admin_url(release))
        return None


@admin.register(DriftCheck)
class DriftCheckAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    list_display = ("created_at", "environment_link", "result_column")
    list_filter = ("result", ("created_at", admin.DateFieldListFilter))
    search_fields = ("environment__slug", "environment__site__slug")
    list_select_related = ("environment__site",)
    show_full_result_count = False
    fields = ("id", "environment_link", "result_column", "checksums", "created_at")
    readonly_fields = fields

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)

    @admin.display(description="Result", ordering="result")
    def result_column(self, obj):
        return status_badge(obj.result, obj.get_result_display())


@admin.register(DeployArchive)
class DeployArchiveAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Archives uploaded for deploys (through the API); read-only here."""

    list_display = ("filename", "environment_link", "layout", "size_bytes", "created_by", "created_at")
    list_filter = ("layout", "archive_format")
    search_fields = ("filename", "sha256", "environment__slug", "environment__site__slug")
    list_select_related = ("environment__site", "created_by")
    show_full_result_count = False
    fields = ("id", "environment_link", "filename", "archive_format", "layout", "size_bytes", "unpacked_bytes",
              "sha256", "created_by", "created_at")
    readonly_fields = fields

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)
