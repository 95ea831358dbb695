from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html

from apps.accounts.permissions import require, require_for_environment
from apps.backups import services, storage
from apps.backups.choices import BackupStatus
from apps.backups.models import Backup, BackupRepository, BackupSchedule
from apps.core.admin_helpers import ReadOnlyAdminMixin, change_link, status_badge
from apps.core.admin_actions import ObjectAction
from apps.core.admin_pages import PanelModelAdmin


def sites_without_verified_backup() -> list:
    """(site, "failing" | "unverified") for each site whose latest completed backup is not verified."""
    from apps.sites.models import Site

    found = []
    for site in Site.objects.order_by("slug"):
        state = services.drill_state(services.latest_backup(site))
        if state in ("failing", "unverified"):
            found.append((site, state))
    return found


def _backup_details(backup):
    return [
        ("environment", str(backup.environment) if backup.environment is not None
         else f"{backup.site_slug}/{backup.environment_slug} (deleted)"),
        ("scope", backup.get_backup_scope_display()),
        ("completed", f"{backup.completed_at:%Y-%m-%d %H:%M} UTC" if backup.completed_at else "-"),
        ("checksum", backup.checksum or "-"),
    ]


class RestoreBackup(ObjectAction):
    """The backup back into the environment it was taken of."""

    name = "restore_backup"
    label = "Restore"
    description = "Restore into its environment (one selected backup)"
    permission = "environments.restore_environment"
    audit = "environment.restore"
    one_only = True
    done = "restore queued as"
    confirm = dict(
        title="Restore this backup",
        question="Put this backup back into the environment it was taken of? It is checked against its checksum "
                 "first, a full pre-restore backup is taken, then the environment's code, uploads and/or database "
                 "(per the backup's scope) are replaced; an unhealthy result is put back by itself.",
        warnings=["Changes made to the environment since the backup are replaced (the pre-restore backup keeps "
                  "them)."],
        button="Yes, restore",
        details=_backup_details,
    )

    def shown(self, request, backup):
        # A backup of a deleted environment goes back as a clone, or into another environment (API, command).
        return (backup.status == BackupStatus.COMPLETED and backup.environment_id is not None
                and super().shown(request, backup))

    def check(self, request, backup):
        require_for_environment(request.user, backup.environment, self.permission)

    def call(self, request, backup):
        return services.request_restore(backup.environment_id, backup.pk, user=request.user)


class RestoreBackupAsClone(ObjectAction):
    """The backup into a new clone environment; production untouched."""

    name = "restore_backup_as_clone"
    label = "Restore as new clone"
    description = "Restore as a new clone environment (one selected backup)"
    permission = ("environments.add_environment", "environments.restore_environment")
    audit = "backup.restore_as_clone"
    one_only = True
    done = "clone and restore queued as"
    confirm = dict(
        title="Restore this backup as a new clone",
        question="Make a new clone environment of the site (a copy of the backup's environment) and restore this "
                 "backup into it? The backup's environment and production are not changed; the clone gets its own "
                 "preview URL, its mail is held and search engines are kept away.",
        button="Yes, make the clone",
        details=_backup_details,
    )

    def shown(self, request, backup):
        return backup.status == BackupStatus.COMPLETED and super().shown(request, backup)

    def check(self, request, backup):
        require(request.user, *self.permission)

    def call(self, request, backup):
        return services.request_restore_as_clone(backup.pk, user=request.user)


class VerifyByDrill(ObjectAction):
    """The restore drill now, for one backup (it runs weekly per site by itself)."""

    name = "verify_backup"
    label = "Verify by a restore drill"
    description = "Verify by a restore drill (one selected backup)"
    permission = "backups.add_backup"
    audit = "backup.verify"
    one_only = True
    done = "restore drill queued as"

    def shown(self, request, backup):
        return backup.status == BackupStatus.COMPLETED

    def call(self, request, backup):
        return services.request_drill(backup.pk, user=request.user)


DRILL_STATES = {"verified": "Verified", "failing": "Drill failed", "unverified": "Not verified yet"}


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Backups are written by backup jobs only; the admin is their inventory,
    and where one is restored (into its environment, or as a new clone)."""

    object_actions = (RestoreBackup(), RestoreBackupAsClone(), VerifyByDrill())

    list_display = (
        "created_at", "environment_link", "backup_scope", "reason", "status_column", "size", "retention_until",
        "completed_at", "verification",
    )
    list_filter = ("status", "error_code", "backup_scope", "reason", ("created_at", admin.DateFieldListFilter))
    search_fields = ("storage_path", "checksum", "environment_slug", "site_slug", "error_message")
    list_select_related = ("environment__site",)
    show_full_result_count = False
    fields = (
        "id", "environment_link", "site_id", "backup_scope", "reason", "status_column", "error_code",
        "error_message", "job_link", "storage_type",
        "storage_path", "size", "added", "checksum", "parts", "retention_until", "completed_at", "purged_at",
        "verification", "verified_at", "verify_failed_at", "verify_message", "state_version", "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        if storage.configured_storage() is None:
            # Said where backups are looked for: they are off, and how to turn them on.
            self.message_user(request, storage.NOT_CONFIGURED_HINT, messages.WARNING)
        unverified = sites_without_verified_backup()
        if unverified:
            listed = "; ".join(f"{site.slug}: {DRILL_STATES[state].lower()}" for site, state in unverified[:20])
            more = f" (and {len(unverified) - 20} more)" if len(unverified) > 20 else ""
            self.message_user(request, f"Sites whose latest backup is not verified by a restore drill: {listed}{more}.",
                              messages.WARNING)
        return super().changelist_view(request, extra_context)

    @admin.display(description="Restore drill")
    def verification(self, obj):
        if obj.status != BackupStatus.COMPLETED:
            return "-"
        state = services.drill_state(obj)
        badge = {"verified": "active", "failing": "failed", "unverified": "pending"}[state]
        return status_badge(badge, DRILL_STATES[state])

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
        badge = status_badge(obj.status, obj.get_status_display())
        if obj.status != BackupStatus.FAILED or not (obj.error_code or obj.error_message):
            return badge
        # Why it failed, where the status is shown (the list is the environment's backups page too).
        return format_html('{}<br><code>{}</code> {}', badge, obj.error_code or "-", obj.error_message or "")

    @admin.display(description="Job")
    def job_link(self, obj):
        return change_link(obj.job) if obj.job_id else "-"

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
