from django.contrib import admin
from django.utils.html import format_html

from apps.backups.models import Backup
from apps.core.admin_helpers import (
    PanelModelAdmin,
    ReadOnlyAdminMixin,
    change_link,
    changelist_link,
    run_service_action,
    status_badge,
)
from apps.core.choices import LifecycleStatus
from apps.domains.models import Domain
from apps.environments import services
from apps.environments.models import DriftCheck, Environment, Release
from apps.jobs.models import Job


@admin.register(Environment)
class EnvironmentAdmin(PanelModelAdmin):
    """Environments are created, changed and deleted by jobs; the admin shows
    them, renames them and resets a failed one."""

    list_display = (
        "__str__", "site_link", "environment_type", "status_column", "drift_column", "node",
        "preview_link", "created_at",
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
    actions = ("reset_failed_state",)
    object_actions = (("reset_failed_state", "Reset failed state"),)

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

    def has_reset_permission(self, request):
        return request.user.has_perm("environments.change_environment")

    @admin.action(description="Reset failed state (failed → active)", permissions=["reset"])
    def reset_failed_state(self, request, queryset):
        return run_service_action(
            self,
            request,
            queryset,
            action="environment.reset",
            call=lambda environment: services.reset_environment(environment.pk),
            done="reset; it is active again.",
            label=lambda obj: f"Environment {obj}",
        )

    def object_actions_for(self, request, obj):
        if obj.status != LifecycleStatus.FAILED:
            return []
        return super().object_actions_for(request, obj)


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
