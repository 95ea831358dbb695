from django.contrib import admin
from django.utils.html import format_html

from apps.core.admin_helpers import ReadOnlyAdminMixin, change_link, status_badge
from apps.core.admin_pages import PanelModelAdmin
from apps.domains import admin_pages as pages
from apps.domains.models import Domain


@admin.register(Domain)
class DomainAdmin(ReadOnlyAdminMixin, PanelModelAdmin):
    """Domains are attached and removed by jobs (DNS check, server block, certificate)."""

    list_display = ("hostname", "environment_link", "tls_column", "tls_expires_at", "is_primary", "created_at")
    list_filter = ("tls_status", "is_primary")
    search_fields = ("hostname", "environment__slug", "environment__site__slug")
    list_select_related = ("environment__site",)
    fields = (
        "id", "hostname", "environment_link", "is_primary", "tls_column", "tls_issuer", "tls_expires_at",
        "tls_error", "state_version",
        "created_at", "updated_at",
    )
    readonly_fields = fields
    object_actions = (pages.MakePrimary(), pages.RemoveDomain())

    @admin.display(description="Environment", ordering="environment__site__slug")
    def environment_link(self, obj):
        return change_link(obj.environment)

    @admin.display(description="TLS", ordering="tls_status")
    def tls_column(self, obj):
        warning = pages.certificate_warning(obj)
        badge = status_badge(obj.tls_status, obj.get_tls_status_display())
        return format_html('{} <strong style="color:#ba2121">{}</strong>', badge, warning) if warning else badge
