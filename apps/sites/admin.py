from django.contrib import admin
from django.utils.html import format_html

from apps.backups.models import Backup
from apps.core.admin_helpers import (
    PanelModelAdmin,
    change_link,
    changelist_link,
    run_service_action,
    status_badge,
)
from apps.core.choices import LifecycleStatus
from apps.environments.models import Environment
from apps.jobs.models import Job
from apps.sites import services
from apps.sites.models import Site


class EnvironmentInline(admin.TabularInline):
    model = Environment
    fields = ("environment_link", "environment_type", "status_column", "node", "preview_url", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("slug",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("site", "node")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Environment")
    def environment_link(self, obj):
        return change_link(obj, obj.slug)

    @admin.display(description="Status")
    def status_column(self, obj):
        return status_badge(obj.status, obj.get_status_display())


@admin.register(Site)
class SiteAdmin(PanelModelAdmin):
    """Creating and deleting sites are jobs on a node; here the operator sees
    sites, renames them and resets a failed one."""

    list_display = ("slug", "name", "status_column", "related", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    ordering = ("slug",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "status_column", "status_reason", "related")}),
        ("Record", {"fields": ("id", "state_version", "created_at", "updated_at")}),
    )
    readonly_fields = ("slug", "status_column", "status_reason", "related", "id", "state_version", "created_at", "updated_at")
    inlines = (EnvironmentInline,)
    actions = ("reset_failed_state",)
    object_actions = (("reset_failed_state", "Reset failed state"),)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Related")
    def related(self, obj):
        return format_html(
            "{} · {} · {}",
            changelist_link(Environment, "environments", site=obj.pk),
            changelist_link(Job, "jobs", site=obj.pk),
            changelist_link(Backup, "backups", environment__site=obj.pk),
        )

    def has_reset_permission(self, request):
        return request.user.has_perm("sites.change_site")

    @admin.action(description="Reset failed state (failed → active)", permissions=["reset"])
    def reset_failed_state(self, request, queryset):
        return run_service_action(
            self,
            request,
            queryset,
            action="site.reset",
            call=lambda site: services.reset_site(site.pk),
            done="reset; it is active again.",
            label=lambda obj: f"Site {obj}",
        )

    def object_actions_for(self, request, obj):
        if obj.status != LifecycleStatus.FAILED:
            return []
        return super().object_actions_for(request, obj)
