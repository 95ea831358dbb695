from django.contrib import admin
from django.utils.html import format_html

from apps.core.admin_helpers import PanelModelAdmin, changelist_link, status_badge
from apps.environments.models import Environment
from apps.jobs.models import Job
from apps.nodes.models import Node


@admin.register(Node)
class NodeAdmin(PanelModelAdmin):
    """Registering and provisioning a node pin its host key and run jobs on it;
    until those services exist the admin shows nodes and lets the label change."""

    list_display = ("name", "hostname", "public_ipv4", "status_column", "is_local", "last_seen_at", "related")
    list_filter = ("status", "is_local")
    search_fields = ("name", "hostname", "public_ipv4")
    ordering = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "status_column", "status_reason", "is_local", "related")}),
        ("Connection", {"fields": ("hostname", "ssh_port", "ssh_user", "public_ipv4", "host_key", "last_seen_at")}),
        ("Record", {"fields": ("id", "state_version", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "status_column", "status_reason", "is_local", "related", "hostname", "ssh_port", "ssh_user",
        "public_ipv4", "host_key", "last_seen_at", "id", "state_version", "created_at", "updated_at",
    )

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
            "{} · {}",
            changelist_link(Environment, "environments", node=obj.pk),
            changelist_link(Job, "jobs", node=obj.pk),
        )
