from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from apps.audit import services as audit
from apps.audit.choices import AuditResult
from apps.backups.models import Backup
from apps.core.admin_helpers import (
    PanelModelAdmin,
    ResetFailedStateMixin,
    ReadOnlyAdminMixin,
    admin_url,
    change_link,
    changelist_link,
    form_errors_from_serializer,
    render_service_form,
    run_job_action,
    status_badge,
)
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.domains.models import Domain
from apps.environments import services
from apps.environments.choices import EnvironmentType, PromotionPreset
from apps.environments.models import DriftCheck, Environment, Release
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
        "redis_cache_enabled", "id", "state_version", "created_at", "updated_at",
    )
    actions = ("reset_failed_state", "run_health_check", "open_wordpress_admin", "clone_environment")
    object_actions = (
        ("open_wordpress_admin", "Open WordPress admin"),
        ("clone_environment", "Clone environment"),
        ("run_health_check", "Run health check"),
        ("reset_failed_state", "Reset failed state"),
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

    def object_actions_for(self, request, obj):
        hidden = set()
        if obj.status != LifecycleStatus.FAILED:
            hidden.add("reset_failed_state")
        if obj.status != LifecycleStatus.ACTIVE:
            hidden.add("open_wordpress_admin")
            hidden.add("clone_environment")
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
            call=lambda environment: services.request_health_check(environment.pk, user=request.user),
            label=lambda obj: f"Environment {obj}",
        )

    # --- magic login -------------------------------------------------------------

    def has_login_permission(self, request):
        return request.user.has_perm("environments.change_environment")

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
        environments = list(queryset[:2])
        if len(environments) != 1:
            self.message_user(request, "Select exactly one environment to clone.", messages.ERROR)
            return None
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_clone", args=(environments[0].pk,))
        )

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

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/clone/",
                self.admin_site.admin_view(self.clone_view),
                name=f"{opts.app_label}_{opts.model_name}_clone",
            ),
            path(
                "<path:object_id>/wp-admin/",
                self.admin_site.admin_view(self.wp_admin_view),
                name=f"{opts.app_label}_{opts.model_name}_wp_admin",
            ),
            *super().get_urls(),
        ]

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
        client = audit.client_address(request)
        try:
            answer = services.magic_login(environment.pk)
        except ApiError as exc:
            audit.record(
                user=request.user, action="environment.magic_login", resource=environment,
                result=AuditResult.FAILED, client_address=client,
                details={"via": "admin", "code": exc.code, "message": exc.message},
            )
            self.message_user(request, f"Environment {environment}: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(back or admin_url(environment))
        audit.record(
            user=request.user, action="environment.magic_login", resource=environment,
            result=AuditResult.SUCCEEDED, client_address=client, details={"via": "admin"},
        )
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


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
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
