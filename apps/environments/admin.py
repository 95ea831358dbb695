from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.accounts.permissions import may_act_on_environment
from apps.backups.admin_pages import BackupSchedulePage
from apps.backups.models import Backup
from apps.core.admin_helpers import (
    ReadOnlyAdminMixin,
    change_link,
    changelist_link,
    status_badge,
)
from apps.core.admin_pages import PanelModelAdmin
from apps.core.choices import LifecycleStatus
from apps.domains import admin_pages as domain_pages
from apps.domains.models import Domain
from apps.environments import admin_pages as pages
from apps.environments import drift
from apps.environments.choices import EnvironmentType
from apps.environments.models import DeployArchive, DriftBaseline, DriftCheck, Environment, Release
from apps.jobs.models import Job


@admin.register(Environment)
class EnvironmentAdmin(PanelModelAdmin):
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
        ("Hosting", {"fields": ("node", "preview_link", "primary_domain", "domains_column", "current_release", "source_environment", "expires_at")}),
        ("Deploys", {"fields": ("git_repository", "deploy_key_public")}),
        ("Staging holds", {"fields": ("holds_column", "outgoing_allowed_hosts")}),
        (
            "Promotion and caching",
            {"fields": ("promotion_preset", "drift_column", "drift_checked_at", "last_drift_check", "drift_report",
                        "fastcgi_cache_enabled", "redis_cache_enabled")},
        ),
        ("Record", {"fields": ("id", "state_version", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "slug", "site_link", "environment_type", "status_column", "status_reason", "related", "node",
        "preview_link", "primary_domain", "domains_column", "current_release", "source_environment", "expires_at",
        "promotion_preset", "drift_column", "drift_checked_at", "last_drift_check", "drift_report", "fastcgi_cache_enabled",
        "redis_cache_enabled", "id", "state_version", "created_at", "updated_at", "git_repository", "deploy_key_public",
        "outgoing_allowed_hosts", "holds_column",
    )
    object_actions = (
        pages.OpenWordPressAdmin(),
        pages.DeployPage(),
        pages.GitRepositoryPage(),
        pages.CloneEnvironment(),
        pages.HeldMailPage(),
        pages.StagingHoldsPage(),
        pages.RunScheduledWork(),
        pages.OutgoingAllowListPage(),
        pages.ReleasesPage(),
        pages.UpdatesPage(),
        pages.RunHealthCheck(),
        pages.CheckDrift(),
        pages.RefreshFromProduction(),
        pages.PromotePage(),
        pages.CachePage(),
        pages.PurgeCaches(),
        pages.BackUpNow(),
        domain_pages.AddDomainPage(),
        pages.RestorePage(),
        BackupSchedulePage(),
        pages.ResetEnvironment(),
        pages.DeleteEnvironment(),
        pages.WordPressAdminFromList(),
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

    @admin.display(description="Last drift check")
    def drift_report(self, obj):
        return drift_report_html(obj.last_drift_check)

    @admin.display(description="Preview URL")
    def preview_link(self, obj):
        return format_html('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', obj.preview_url, obj.preview_url)

    @admin.display(description="Domains")
    def domains_column(self, obj):
        return domain_pages.environment_domains(obj)

    @admin.display(description="Holds")
    def holds_column(self, obj):
        if obj.environment_type == EnvironmentType.PRODUCTION:
            return "None: production is the live site."
        # What the staging must-use plugin holds by design; the page "Holds and
        # outgoing requests" asks the environment which are on now.
        return ("WP-Cron and Action Scheduler held (run them once from Holds and outgoing requests), "
                "payment gateways off and in test mode, outgoing requests refused but for the allow-list, "
                "mail held, search engines discouraged.")

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

    def has_change_permission(self, request, obj=None):
        # Renaming production is acting on production, like everything else the API guards.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_act_on_environment(request.user, obj))

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
    """Releases are made by deploys and clones; the admin shows them and rolls
    an environment back to one of them."""

    object_actions = (pages.RollBackToRelease(),)
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


def drift_report_html(check):
    """What a drift check found: its one-line summary, then each changed table
    and the changed paths, blocking ones first."""
    if check is None:
        return "No drift check yet."
    report = check.report or {}
    rows = [format_html("<li>{} <strong>{}</strong> {} ({}): {} → {} rows{}</li>",
                        "BLOCKS" if entry["blocking"] else "reported", entry["table"], entry["change"], entry["kind"],
                        entry["rows_baseline"] if entry["rows_baseline"] is not None else "-",
                        entry["rows_now"] if entry["rows_now"] is not None else "-",
                        format_html(", rows differ after key {}", entry["changed_after_key"])
                        if entry.get("changed_after_key") is not None else "")
            for entry in sorted(report.get("tables") or [], key=lambda entry: not entry["blocking"])]
    for area, blocking in (("code", True), ("uploads", False)):
        found = report.get(area) or {}
        for kind in ("added", "changed", "removed"):
            for path in found.get(kind) or []:
                rows.append(format_html("<li>{} {} <code>{}</code> {}</li>", "BLOCKS" if blocking else "reported",
                                        area, path, kind))
            hidden = (found.get("counts") or {}).get(kind, 0) - len(found.get(kind) or [])
            if hidden > 0:
                rows.append(format_html("<li>… and {} more {} {}</li>", hidden, area, kind))
    return format_html("{} {} · {}<ul>{}</ul>", status_badge(check.result, check.get_result_display()),
                       check.created_at.strftime("%Y-%m-%d %H:%M:%S"), drift.summary(report),
                       format_html_join("", "{}", ((row,) for row in rows)))


@admin.register(DriftCheck)
class DriftCheckAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    list_display = ("created_at", "environment_link", "result_column", "preset")
    list_filter = ("result", "preset", ("created_at", admin.DateFieldListFilter))
    search_fields = ("environment__slug", "environment__site__slug")
    list_select_related = ("environment__site",)
    show_full_result_count = False
    fields = ("id", "environment_link", "measured_environment", "result_column", "preset", "report_column",
              "baseline", "job", "created_at")
    readonly_fields = fields

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)

    @admin.display(description="Result", ordering="result")
    def result_column(self, obj):
        return status_badge(obj.result, obj.get_result_display())

    @admin.display(description="What changed")
    def report_column(self, obj):
        return drift_report_html(obj)


@admin.register(DriftBaseline)
class DriftBaselineAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Production's checksums taken when an environment was copied from it: what its drift checks compare with."""

    list_display = ("taken_at", "environment_link", "origin")
    list_filter = ("origin",)
    search_fields = ("environment__slug", "environment__site__slug")
    list_select_related = ("environment__site",)
    show_full_result_count = False
    fields = ("id", "environment_link", "measured_environment", "origin", "taken_at", "contents", "created_at")
    readonly_fields = fields

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)

    @admin.display(description="Measured")
    def contents(self, obj):
        checksums = obj.checksums or {}
        return (f"{len(checksums.get('tables') or {})} tables, {len(checksums.get('code') or {})} code paths "
                f"(release {checksums.get('release')}), {len(checksums.get('uploads') or {})} upload paths")


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
