import ipaddress
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.audit import services as audit
from apps.core.admin_actions import ObjectAction
from apps.core.admin_helpers import (
    admin_url,
    changelist_link,
    form_errors_from_serializer,
    render_service_form,
    status_badge,
)
from apps.core.admin_pages import PanelModelAdmin
from apps.core.errors import ApiError
from apps.environments.models import Environment
from apps.jobs.models import Job
from apps.nodes import keys, services
from apps.nodes.choices import NodeStatus
from apps.nodes.health import check_health
from apps.nodes.models import Node
from apps.nodes.serializers import RegisterNodeSerializer
from apps.nodes.ssh import fingerprint


class RegisterNodeForm(forms.Form):
    """The admin's "register node": validated exactly like ``POST /api/nodes``."""

    name = forms.CharField(max_length=63, help_text="A short name: lower-case letters, digits, dashes.")
    hostname = forms.CharField(max_length=253, label="Hostname or IP", help_text="Where the panel connects over SSH.")
    ssh_port = forms.IntegerField(initial=22, label="SSH port")
    ssh_user = forms.CharField(initial="root", max_length=32, label="SSH user")
    public_ipv4 = forms.CharField(
        max_length=15, label="Public IPv4", required=False,
        help_text="The address visitors reach the node at (preview URLs, DNS checks). "
                  "Default: the hostname, when it is an IPv4 address.",
    )
    is_local = forms.BooleanField(required=False, label="This is the machine that runs the panel")

    def clean(self):
        cleaned = super().clean()
        hostname = cleaned.get("hostname")
        if not cleaned.get("public_ipv4") and hostname:
            try:
                cleaned["public_ipv4"] = str(ipaddress.IPv4Address(hostname))
            except ValueError:
                self.add_error("public_ipv4", "Required when the hostname is not an IPv4 address.")
        given = {key: value for key, value in cleaned.items() if value not in (None, "")}
        body = RegisterNodeSerializer(data=given, partial=True)
        if not body.is_valid():
            form_errors_from_serializer(self, body.errors)
        else:
            cleaned.update(body.validated_data)
        return cleaned


def _size(value) -> str:
    if not isinstance(value, (int, float)):
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"


def _percent(value) -> str:
    return f"{value} % used" if isinstance(value, (int, float)) else "use unknown"


def health_rows(health: dict) -> list[tuple[str, object]]:
    """The stored health report as (label, HTML) rows an operator reads at a glance."""
    rows = []
    service_states = health.get("services") or {}
    if service_states:
        rows.append(("Services", format_html_join(
            " ", "{} {}",
            ((name, status_badge("active", "running") if up else status_badge("failed", "stopped"))
             for name, up in sorted(service_states.items())),
        )))
    disk = health.get("disk") or {}
    if disk:
        rows.append(("Disk", format_html(
            "{} free of {} on {} ({})", _size(disk.get("free_bytes")), _size(disk.get("total_bytes")),
            disk.get("path", "/"), _percent(disk.get("used_percent")),
        )))
    memory = health.get("memory") or {}
    if memory:
        rows.append(("Memory", format_html(
            "{} available of {} ({})", _size(memory.get("available_bytes")), _size(memory.get("total_bytes")),
            _percent(memory.get("used_percent")),
        )))
    load = health.get("load") or {}
    if load:
        rows.append(("Load", format_html(
            "{} / {} / {} (1, 5, 15 min; {} CPUs)",
            *(f"{load[key]:.2f}" if isinstance(load.get(key), (int, float)) else "?" for key in ("1m", "5m", "15m")),
            load.get("cpus", "?"),
        )))
    versions = health.get("versions") or {}
    if versions:
        rows.append(("Versions", format_html_join(
            ", ", "{} {}", ((name, value or "not found") for name, value in sorted(versions.items())),
        )))
    firewall = health.get("firewall")
    if isinstance(firewall, dict):
        ports = ", ".join(str(port) for port in firewall.get("tcp_ports", []))
        rows.append(("Firewall", format_html(
            "{} (TCP {}){}", status_badge("active", "loaded") if firewall.get("applied")
            else status_badge("disabled", "not loaded"), ports or "-",
            f" — {firewall['reason']}" if firewall.get("reason") else "",
        )))
    fail2ban = health.get("fail2ban")
    if isinstance(fail2ban, dict):
        rows.append(("Fail2Ban", format_html(
            "{}{}", status_badge("active", "running") if fail2ban.get("running")
            else status_badge("failed", "not running"),
            f" — {fail2ban['error']}" if fail2ban.get("error") else "",
        )))
    if "listen_address" in health:
        rows.append(("Web server listens on", health["listen_address"] or "all addresses"))
    certificates = health.get("certificates")
    if isinstance(certificates, dict) and (certificates.get("certificates") or certificates.get("renewal")):
        rows.append(("Certificates", certificate_summary(certificates)))
    return rows


def certificate_summary(report: dict):
    """Each certificate's expiry, flagged within CERTIFICATE_WARN_DAYS of it,
    and the last renewal run, flagged when it failed."""
    now = timezone.now()
    items = []
    for name, not_after in sorted((report.get("certificates") or {}).items()):
        try:
            expires = datetime.fromisoformat(not_after)
        except (TypeError, ValueError):
            items.append((name, "expiry unknown", status_badge("failed", "check")))
            continue
        left = expires - now
        flag = (status_badge("failed", "expired") if left.total_seconds() <= 0
                else status_badge("failed", f"expires in {left.days} day(s)")
                if left < timedelta(days=settings.CERTIFICATE_WARN_DAYS) else "")
        items.append((name, f"until {expires:%Y-%m-%d}", flag))
    renewal = report.get("renewal")
    renewal_html = ""
    if isinstance(renewal, dict):
        renewal_html = format_html(
            "<div>Last renewal run: {} {}</div>",
            status_badge("active", "succeeded") if renewal.get("ok") else status_badge("failed", "failed"),
            "" if renewal.get("ok") else renewal.get("detail", ""),
        )
    return format_html("{}{}", format_html_join("", "<div>{} {} {}</div>", items), renewal_html)


class NodeAction(ObjectAction):
    permission = "nodes.manage_node"

    def shown(self, request, node):
        return node.status != NodeStatus.DECOMMISSIONED


class ProvisionNode(NodeAction):
    name = "provision_nodes"
    label = "Provision"
    description = "Provision selected nodes (install and configure the stack)"
    audit = "node.provision"

    def call(self, request, node):
        return services.provision_node(node, user=request.user)


class RefreshHealth(NodeAction):
    name = "refresh_health"
    label = "Refresh health"
    description = "Refresh health (a live check on the node)"
    audit = "node.health_check"
    queues_job = False

    def call(self, request, node):
        check_health(node)  # a failure is the API error the operator is shown
        node.refresh_from_db()
        return node

    @staticmethod
    def done(node):
        stopped = sorted(name for name, up in (node.health.get("services") or {}).items() if not up)
        return f"health checked; stopped services: {', '.join(stopped)}." if stopped \
            else "health checked; all services are running."


class RepinHostKey(NodeAction):
    name = "repin_host_keys"
    label = "Re-pin host key"
    description = "Re-pin host key (after verifying the node's new key)"
    audit = "node.repin_host_key"
    queues_job = False
    confirm = dict(
        title="Re-pin host key",
        question="Pin the host key these nodes show now? The panel then trusts that key for all further "
                 "work on them.",
        warnings=[
            "Do this only after you have verified the node's new host key yourself, on the node "
            "(for example with ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on its console). A host key "
            "that changed unexpectedly can mean that someone is intercepting the connection. After pinning, "
            "the panel shows the fingerprint it pinned: compare it with the one you verified.",
        ],
        button="I have verified the new key: pin it",
        details=lambda node: [
            ("connection", f"{node.ssh_user}@{node.hostname}:{node.ssh_port}"),
            ("pinned now", fingerprint(node.host_key) if node.host_key else "nothing"),
            ("status", node.status_reason or node.get_status_display()),
        ],
    )

    def call(self, request, node):
        return services.repin_host_key(node)

    @staticmethod
    def done(node):
        return f"host key {fingerprint(node.host_key)} is pinned now; compare it with the one you verified on the node."


@admin.register(Node)
class NodeAdmin(PanelModelAdmin):
    """Nodes are registered through a form that connects once and pins the
    host key (never a plain model save); provisioning is a job; the health
    report and the panel's SSH key are on the change page."""

    list_display = ("name", "hostname", "public_ipv4", "status_column", "is_local", "last_seen_at", "related")
    list_filter = ("status", "is_local")
    search_fields = ("name", "hostname", "public_ipv4")
    ordering = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "status_column", "status_reason", "is_local", "related")}),
        ("Jobs", {"fields": ("max_site_jobs",)}),
        ("Health", {"fields": ("health_report", "health_checked_at")}),
        ("Connection", {"fields": ("hostname", "ssh_port", "ssh_user", "public_ipv4", "host_key_column",
                                   "panel_public_key", "last_seen_at")}),
        ("Record", {"fields": ("id", "state_version", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "status_column", "status_reason", "is_local", "related", "health_report", "health_checked_at", "hostname",
        "ssh_port", "ssh_user", "public_ipv4", "host_key_column", "panel_public_key", "last_seen_at", "id",
        "state_version", "created_at", "updated_at",
    )
    object_actions = (ProvisionNode(), RefreshHealth(), RepinHostKey())

    def has_add_permission(self, request):
        return request.user.has_perm("nodes.add_node")

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("nodes.manage_node")

    def save_model(self, request, obj, form, change):
        # The one editable field; the service wakes the jobs that more room lets start.
        if change and "max_site_jobs" in form.changed_data:
            services.set_max_site_jobs(obj.pk, obj.max_site_jobs, obj.state_version)

    # --- register -----------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        """Register a node: services.register_node connects once and pins its host key."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RegisterNodeForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = {key: form.cleaned_data[key] for key in RegisterNodeSerializer().fields}
            try:
                with audit.action(audit.Actor.of_request(request), "node.register", resource_type="node",
                                  details={"via": "admin", "name": data["name"]}) as attempt:
                    node = services.register_node(**data)
                    attempt.describe(resource=node, details={"name": node.name})
            except ApiError as exc:
                hint = " Add the panel's key shown above to the node user's authorized_keys and try again." \
                    if exc.code == "ssh_auth_failed" else ""
                form.add_error(None, exc.message + hint)
            else:
                self.message_user(
                    request,
                    f"Node {node.name} is registered; host key {fingerprint(node.host_key)} is pinned. "
                    "Next: press Provision to install its stack.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(admin_url(node))
        return render_service_form(
            self, request, form, title="Register node", submit="Connect and register",
            intro="The panel connects to the node once over SSH, pins the host key it shows, and refuses "
                  "any later connection whose host key differs.",
            public_key=keys.public_key(),
        )

    # --- display ----------------------------------------------------------------------

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

    @admin.display(description="Report")
    def health_report(self, obj):
        rows = health_rows(obj.health or {})
        if not rows:
            return "No report yet: provision the node or press Refresh health."
        return format_html(
            '<table class="pressluft-health">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description="Pinned host key")
    def host_key_column(self, obj):
        if not obj.host_key:
            return "-"
        return format_html("{} <code>{}</code>", obj.host_key.split()[0], fingerprint(obj.host_key))

    @admin.display(description="Panel's SSH public key")
    def panel_public_key(self, obj):
        return format_html(
            '<textarea readonly rows="2" cols="80" style="font-family:monospace" onclick="this.select()">{}</textarea>'
            '<div class="help">Authorize this key for the node\'s SSH user (~/.ssh/authorized_keys).</div>',
            keys.public_key(),
        )
