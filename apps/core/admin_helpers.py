"""Building blocks shared by the panel's admin pages.

The admin is a product surface for operators, so every page follows the same
rules: state changes only through services, every change audited, coloured
status columns, links between related objects, and list pages that stay cheap
on tables with millions of rows.
"""

import functools
import uuid
from urllib.parse import urlencode

from django import forms
from django.apps import apps as django_apps
from django.contrib import admin, messages
from django.contrib.admin import helpers as admin_forms
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.core.models import VersionedModel
from apps.core.state import change_state

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


class PanelModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Base of the panel's model admins.

    State fields are never form fields here: statuses move only through the
    service functions, which the admin reaches through actions. A change to a
    versioned row goes through ``change_state`` so its ``state_version`` moves
    like any other change.
    """

    form = VersionGuardedForm
    change_form_template = "admin/pressluft/change_form.html"
    # (action name, button label) shown on the change page; see object_actions_for.
    object_actions: tuple = ()
    search_ids_on_pk = True

    def object_actions_for(self, request, obj) -> list[tuple[str, str]]:
        actions = self.get_actions(request)
        return [(name, label) for name, label in self.object_actions if name in actions]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["object_actions"] = self.object_actions_for(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        if change and isinstance(obj, VersionedModel):
            names = {field.name for field in obj._meta.concrete_fields}
            changes = {name: getattr(obj, name) for name in form.changed_data if name in names}
            if changes:
                change_state(obj, **changes)
            return
        super().save_model(request, obj, form, change)

    def get_search_results(self, request, queryset, search_term):
        # Operators paste ids from the API, job logs and audit entries.
        if not self.search_ids_on_pk or not isinstance(self.model._meta.pk, models.UUIDField):
            return super().get_search_results(request, queryset, search_term)
        try:
            wanted = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=wanted), False


class ReadOnlyAdminMixin:
    """For rows that only services and jobs write: view, never add, edit or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _report_refusal(modeladmin, request, obj, exc, label):
    """A service refused (its audit entry says so): show the operator the API's own sentence."""
    modeladmin.message_user(request, f"{label(obj)}: {exc.message}", messages.ERROR)


def run_service_action(modeladmin, request, queryset, *, action: str, call, done, label=str):
    """Apply a service function to each selected object, audit each attempt,
    and tell the operator what happened in plain words.

    ``call(obj)`` returns the changed object or raises ApiError, whose message
    is the same sentence an API client would get. ``done`` is the success text,
    or a function of the changed object returning it.
    """
    actor = audit.Actor.of_request(request)
    for obj in queryset:
        try:
            with audit.action(actor, action, resource=obj, details={"via": "admin"}) as attempt:
                changed = call(obj)
                if status := getattr(changed, "status", None):
                    attempt.describe(details={"status": status})
        except ApiError as exc:
            _report_refusal(modeladmin, request, obj, exc, label)
            continue
        text = done(changed) if callable(done) else done
        modeladmin.message_user(request, f"{label(obj)}: {text}", messages.SUCCESS)
    if request.POST.get("_return_to_object") and len(queryset) == 1:
        return HttpResponseRedirect(admin_url(queryset[0]))
    return None


def job_link(job):
    return change_link(job, f"{job.job_type} {str(job.pk)[:8]}")


def run_job_action(modeladmin, request, queryset, *, action: str, call, label=str, done="queued"):
    """Like ``run_service_action``, for services that queue a job: ``call(obj)``
    returns the job (or raises ApiError). Each accepted request is audited with
    its job, so the job's outcome closes the entry. When one object was acted
    on, the browser goes to the job's page, where its log shows the progress.
    """
    actor = audit.Actor.of_request(request)
    objects = list(queryset)
    jobs = []
    for obj in objects:
        try:
            with audit.action(actor, action, resource=obj, details={"via": "admin"}) as attempt:
                job = call(obj)
                attempt.describe(job=job)
        except ApiError as exc:
            _report_refusal(modeladmin, request, obj, exc, label)
            continue
        jobs.append(job)
        modeladmin.message_user(
            request, format_html("{}: {} job {}; its log shows the progress.", label(obj), done, job_link(job)),
            messages.SUCCESS,
        )
    if len(objects) == 1 and jobs:
        return HttpResponseRedirect(admin_url(jobs[0]))
    if request.POST.get("_return_to_object") and len(objects) == 1:
        return HttpResponseRedirect(admin_url(objects[0]))
    return None


def confirm_action(modeladmin, request, queryset, *, title: str, question: str, button: str,
                   warnings=(), details=None):
    """The confirmation page of an admin action, or None once the operator confirmed.

    The page posts the same action and selection back to the changelist with
    ``post=yes``; ``details`` (label, value) rows describe each object.
    """
    if request.POST.get("post") == "yes":
        return None
    objects = list(queryset)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "button": button,
        "warnings": list(warnings),
        "objects": [(obj, details(obj) if details else []) for obj in objects],
        "opts": modeladmin.model._meta,
        "action_name": request.POST.get("action", ""),
        "return_to_object": request.POST.get("_return_to_object", ""),
        "action_checkbox_name": admin_forms.ACTION_CHECKBOX_NAME,
        "cancel_url": admin_url(objects[0]) if len(objects) == 1 else admin_url(modeladmin.model, "changelist"),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/pressluft/confirm_action.html", context)


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


class ResetFailedStateMixin:
    """The "Reset failed state" action of sites and environments: one code path,
    the resource's reset service doing the validation (failed -> active)."""

    # Each admin sets these and defines reset_service(obj), calling its service.
    reset_audit_action = ""  # e.g. "site.reset"
    reset_permission = ""  # e.g. "sites.change_site"

    def has_reset_permission(self, request):
        return request.user.has_perm(self.reset_permission)

    def check_reset_allowed(self, request, obj) -> None:
        """Raise PermissionMissing (an ApiError) when this object needs more than
        ``reset_permission`` (a production environment does)."""

    def _checked_reset(self, request, obj):
        self.check_reset_allowed(request, obj)
        return self.reset_service(obj)

    @admin.action(description="Reset failed state (failed → active)", permissions=["reset"])
    def reset_failed_state(self, request, queryset):
        return run_service_action(
            self,
            request,
            queryset,
            action=self.reset_audit_action,
            call=lambda obj: self._checked_reset(request, obj),
            done="reset; it is active again.",
            label=lambda obj: f"{obj._meta.verbose_name.capitalize()} {obj}",
        )
