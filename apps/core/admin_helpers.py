"""Building blocks shared by the panel's admin pages.

The admin is a product surface for operators, so every page follows the same
rules: state changes only through services, every change audited, coloured
status columns, links between related objects, and list pages that stay cheap
on tables with millions of rows. The base ModelAdmin, object pages and
declared actions are in admin_pages.py and admin_actions.py.
"""

import functools
from urllib.parse import urlencode

from django import forms
from django.apps import apps as django_apps
from django.contrib.admin import helpers as admin_forms
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from apps.audit import services as audit
from apps.core.models import VersionedModel

GREEN, BLUE, ORANGE, RED, GREY = "#1e7e34", "#1f5fa8", "#b35c00", "#b3261e", "#6c757d"

# One palette for every status-like field of every model: the same word has the
# same colour on every page.
STATUS_COLOURS = {
    "active": GREEN,
    "succeeded": GREEN,
    "completed": GREEN,
    "healthy": GREEN,
    "clean": GREEN,
    "queued": BLUE,
    "pending": BLUE,
    "provisioning": BLUE,
    "unknown": BLUE,
    "accepted": BLUE,
    "running": ORANGE,
    "cloning": ORANGE,
    "deploying": ORANGE,
    "restoring": ORANGE,
    "failed": RED,
    "unreachable": RED,
    "unhealthy": RED,
    "drifted": RED,
    "denied": RED,
    "revoked": RED,
    "locked": RED,
    "expired": GREY,
    "cancelled": GREY,
    "decommissioned": GREY,
    "disabled": GREY,
}


def status_badge(value, label=None):
    if value in (None, ""):
        return "-"
    colour = STATUS_COLOURS.get(str(value), GREY)
    return format_html(
        '<span style="color:#fff;background:{};border-radius:3px;padding:1px 6px;'
        'font-size:0.9em;white-space:nowrap">{}</span>',
        colour,
        label or value,
    )


def admin_url(obj_or_model, view="change", *args):
    opts = obj_or_model._meta
    if view == "change" and not args:
        args = (obj_or_model.pk,)
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def change_link(obj, label=None):
    if obj is None:
        return "-"
    return format_html('<a href="{}">{}</a>', admin_url(obj), label if label is not None else str(obj))


def changelist_link(model, label, **filters):
    url = admin_url(model, "changelist")
    if filters:
        url = f"{url}?{urlencode({key: str(value) for key, value in filters.items()})}"
    return format_html('<a href="{}">{}</a>', url, label)


PANEL_APPS = {"accounts", "nodes", "sites", "environments", "backups", "domains", "jobs", "audit", "core"}


@functools.cache
def panel_models_by_name() -> dict:
    return {
        model._meta.model_name: model
        for model in django_apps.get_models()
        if model._meta.app_label in PANEL_APPS
    }


def resource_admin_url(resource_type: str, resource_id: str) -> str | None:
    """Admin page of an audit entry's resource, when the panel has one for it."""
    model = panel_models_by_name().get(resource_type)
    if model is None:
        return None
    try:
        return reverse(f"admin:{model._meta.app_label}_{resource_type}_change", args=(resource_id,))
    except NoReverseMatch:
        return None


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` rows.

    An exact COUNT(*) over a table of millions of log lines or audit entries is
    a full scan on PostgreSQL, paid on every page view. Past the cap the page
    list stops growing; older rows are reached with filters or search.
    """

    cap = 100_000

    @cached_property
    def count(self):
        return self.object_list[: self.cap].count()


class VersionGuardedForm(forms.ModelForm):
    """Refuses to save over a change made by someone else since the page was opened.

    The change form carries the row's ``state_version`` (a hidden input the
    panel's change_form template adds); a mismatch is the optimistic-concurrency
    conflict the API reports as 409.
    """

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        if isinstance(instance, VersionedModel) and not instance._state.adding:
            sent = self.data.get("_state_version")
            if sent is not None and sent != str(instance.state_version):
                raise ValidationError(
                    "This %(what)s was changed by someone else after you opened the page. "
                    "The form now shows the current values; check them and save again.",
                    params={"what": instance._meta.verbose_name},
                    code="stale",
                )
        return cleaned


class AuditedAdminMixin:
    """Every add, change and deletion made in the admin also lands in the audit log."""

    def _audit(self, request, obj, verb, message):
        # Django reports the change once it is made, so the action's body is empty.
        with audit.action(audit.Actor.of_request(request), f"{obj._meta.model_name}.{verb}", resource=obj,
                          details={"via": "admin", "changes": message} if message else {"via": "admin"}):
            pass

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, obj, "create", message)
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        if message:  # "no fields changed" is not a change worth an audit entry
            self._audit(request, obj, "update", message)
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, obj, "delete", None)
        return entries


class ReadOnlyAdminMixin:
    """For rows that only services and jobs write: view, never add, edit or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def job_link(job):
    return change_link(job, f"{job.job_type} {str(job.pk)[:8]}")


def render_service_form(modeladmin, request, form, *, title: str, submit: str, intro: str = "",
                        template: str = "admin/pressluft/service_form.html", **extra):
    """A small form page in the admin's frame whose view calls a service
    (never a ModelForm save): the add pages of sites and nodes."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "submit_label": submit,
        "intro": intro,
        "form": form,
        "adminform": admin_forms.AdminForm(form, [(None, {"fields": list(form.fields)})], {}, model_admin=modeladmin),
        "errors": bool(form.errors),
        "opts": modeladmin.model._meta,
        "has_view_permission": modeladmin.has_view_permission(request),
        **extra,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, template, context)


def form_errors_from_serializer(form, serializer_errors: dict) -> None:
    """Put a DRF serializer's validation errors on the admin form's fields."""
    for field, errors in serializer_errors.items():
        target = field if field in form.fields else None
        for error in errors:
            form.add_error(target, str(error))
