import json

from django.contrib import admin
from django.utils.html import format_html

from apps.audit.models import AuditEntry
from apps.core.admin_helpers import (
    CappedCountPaginator,
    ReadOnlyAdminMixin,
    change_link,
    panel_models_by_name,
    resource_admin_url,
    status_badge,
)
from apps.core.admin_pages import PanelModelAdmin


class ResourceTypeFilter(admin.SimpleListFilter):
    """Choices from the panel's models: a DISTINCT over the audit log would scan all of it."""

    title = "resource type"
    parameter_name = "resource_type"

    def lookups(self, request, model_admin):
        return [(name, model._meta.verbose_name) for name, model in sorted(panel_models_by_name().items())]

    def queryset(self, request, queryset):
        return queryset.filter(resource_type=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """The audit log is evidence: nobody edits or deletes it, not even superusers."""

    list_display = ("created_at", "actor", "action", "resource", "result_column", "status_code", "client_address", "job_link")
    list_filter = ("result", ResourceTypeFilter, ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor", "action", "=resource_id")
    list_select_related = ("job",)
    show_full_result_count = False
    paginator = CappedCountPaginator
    # A pasted id is more often the resource's (searched via resource_id) than the entry's own.
    search_ids_on_pk = False
    fields = (
        "id", "created_at", "completed_at", "actor", "user", "action", "resource", "result_column", "status_code",
        "client_address", "job_link", "details_json",
    )
    readonly_fields = fields

    @admin.display(description="Resource")
    def resource(self, obj):
        label = f"{obj.resource_type}:{obj.resource_id}" if obj.resource_id else obj.resource_type or "-"
        url = resource_admin_url(obj.resource_type, obj.resource_id) if obj.resource_id else None
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description="Result", ordering="result")
    def result_column(self, obj):
        return status_badge(obj.result, obj.get_result_display())

    @admin.display(description="Job")
    def job_link(self, obj):
        return change_link(obj.job, str(obj.job_id)[:8]) if obj.job_id else "-"

    @admin.display(description="Details")
    def details_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True))
