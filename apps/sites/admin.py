from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from apps.accounts.permissions import MANAGE_PRODUCTION
from apps.audit import services as audit
from apps.backups import services as backups
from apps.backups.models import Backup
from apps.core.admin_actions import ObjectAction, ResetFailedState
from apps.core.admin_helpers import (
    admin_url,
    change_link,
    changelist_link,
    form_errors_from_serializer,
    job_link,
    render_service_form,
    status_badge,
)
from apps.core.admin_pages import PanelModelAdmin
from apps.core.errors import ApiError
from apps.environments.models import Environment
from apps.jobs.models import Job
from apps.nodes.choices import NodeStatus
from apps.nodes.models import Node
from apps.sites import services
from apps.sites.models import Site
from apps.sites.serializers import CreateSiteSerializer


class CreateSiteForm(forms.Form):
    """The admin's "add site": validated exactly like ``POST /api/sites``."""

    name = forms.CharField(max_length=200, strip=False, help_text="Shown in the panel and as the WordPress site title.")
    slug = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and inner dashes, at most 63; it names the site's "
                  "resources on the node and cannot be changed later.",
    )
    node = forms.ModelChoiceField(
        queryset=Node.objects.none(),
        required=False,
        empty_label="Default: the local node, or the only active node",
        help_text="Only active nodes are offered.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = Node.objects.filter(status=NodeStatus.ACTIVE).order_by("name")

    def clean(self):
        cleaned = super().clean()
        given = {key: cleaned[key] for key in ("name", "slug") if cleaned.get(key) not in (None, "")}
        body = CreateSiteSerializer(data=given, partial=True)
        if not body.is_valid():
            form_errors_from_serializer(self, body.errors)
        else:
            cleaned.update(body.validated_data)
        return cleaned


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


class DeleteSite(ObjectAction):
    name = "delete_sites"
    label = "Delete site"
    description = "Delete selected sites (from their nodes too)"
    # A site goes with its production environment: as in the API, that needs manage_production too.
    permission = ("sites.delete_site", MANAGE_PRODUCTION)
    audit = "site.delete"
    done = "being deleted by"

    def confirmation(self, objects):
        return dict(
            title="Delete site",
            question="Delete these sites? Each one's environments are removed from their nodes: Linux users, "
                     "PHP-FPM pools, databases, server blocks and files, then the records in the panel.",
            button="Yes, delete",
            details=lambda site: [
                ("environments", ", ".join(f"{env.slug} on {env.node.name}" for env in
                                           site.environments.select_related("node").order_by("slug")) or "none"),
            ],
            **backups.final_backup_confirmation(),
        )

    def call(self, request, site):
        skip = request.POST.get(backups.SKIP_FINAL_BACKUP_OPTION) == "on"
        return services.delete_site(site.pk, user=request.user, final_backup=not skip)


@admin.register(Site)
class SiteAdmin(PanelModelAdmin):
    """Sites are created and deleted by jobs on a node: "Add site" queues
    site_create and "Delete site" site_delete, and both lead to the job's page.
    Here the operator also renames a site and resets a failed one."""

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
    object_actions = (
        ResetFailedState(permission="sites.change_site", audit="site.reset", service=services.reset_site),
        DeleteSite(),
    )

    def has_add_permission(self, request):
        return request.user.has_perm("sites.add_site")

    def add_view(self, request, form_url="", extra_context=None):
        """A form that calls services.create_site, never a model save."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CreateSiteForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                with audit.action(audit.Actor.of_request(request), "site.create", resource_type="site",
                                  details={"via": "admin", "slug": data["slug"]}) as attempt:
                    job = services.create_site(name=data["name"], slug=data["slug"], node=data["node"],
                                               user=request.user)
                    attempt.describe(resource=job.site, job=job)
            except ApiError as exc:
                form.add_error("slug" if "slug" in (exc.details or {}) else None, exc.message)
            else:
                self.message_user(
                    request,
                    format_html("Site {} is being created on node {} by job {}; its log shows the progress.",
                                change_link(job.site, job.site.slug), job.node.name, job_link(job)),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(admin_url(job))
        return render_service_form(
            self, request, form, title="Add site", submit="Create site",
            intro="Creates the site and its production environment on a node: a job installs WordPress "
                  "and checks that the preview URL answers. You are taken to the job to follow it.",
        )

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
            changelist_link(Backup, "backups", site_id=obj.pk),
        )
