from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat

from apps.backups import storage
from apps.backups.models import Backup, BackupRepository, BackupSchedule
from apps.core.admin_helpers import ReadOnlyAdminMixin, change_link, status_badge
from apps.core.admin_pages import PanelModelAdmin


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Backups are written by backup jobs only; the admin is their inventory."""

    list_display = (
        "created_at", "environment_link", "backup_scope", "reason", "status_column", "size", "retention_until",
        "completed_at",
    )
    list_filter = ("status", "backup_scope", "reason", ("created_at", admin.DateFieldListFilter))
    search_fields = ("storage_path", "checksum", "environment_slug", "site_slug")
    list_select_related = ("environment__site",)
    show_full_result_count = False
    fields = (
        "id", "environment_link", "site_id", "backup_scope", "reason", "status_column", "storage_type",
        "storage_path", "size", "added", "checksum", "parts", "retention_until", "completed_at", "purged_at",
        "state_version", "created_at", "updated_at",
    )
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        if storage.configured_storage() is None:
            # Said where backups are looked for: they are off, and how to turn them on.
            self.message_user(request, storage.NOT_CONFIGURED_HINT, messages.WARNING)
        return super().changelist_view(request, extra_context)

    @admin.display(description="New data stored", ordering="added_bytes")
    def added(self, obj):
        return "-" if obj.added_bytes is None else filesizeformat(obj.added_bytes)

    def lookup_allowed(self, lookup, value, request=None):
        # The site page links to "all backups of this site" (those of deleted environments too).
        return lookup in ("environment__site", "site_id") or super().lookup_allowed(lookup, value, request)

    @admin.display(description="Environment", ordering="site_slug")
    def environment_link(self, obj):
        if obj.environment is None:
            # Kept for its retention after its environment (or site) was deleted.
            return f"{obj.site_slug}/{obj.environment_slug} (deleted)"
        return change_link(obj.environment)

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, obj):
        return "-" if obj.size_bytes is None else filesizeformat(obj.size_bytes)



@admin.register(BackupRepository)
class BackupRepositoryAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Which sites have a restic repository; the password is never shown."""

    list_display = ("site_slug", "site_id", "created_at")
    search_fields = ("site_slug",)
    fields = ("site_slug", "site_id", "created_at")
    readonly_fields = fields


@admin.register(BackupSchedule)
class BackupScheduleAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Stored schedules (environments without one have the defaults); each is
    changed on its environment's "Backup schedule" page."""

    list_display = ("environment_link", "enabled", "backup_scope", "window_start", "window_hours", "retention_days",
                    "updated_at")
    list_filter = ("enabled", "backup_scope")
    search_fields = ("environment__slug", "environment__site__slug")
    list_select_related = ("environment__site",)
    fields = ("environment_link", "enabled", "backup_scope", "window_start", "window_hours", "retention_days",
              "state_version", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)
