"""Object pages of the panel's admin, and the base ModelAdmin that serves them.

A model admin lists its operator actions and pages in ``object_actions``:

- ``ObjectAction`` (apps/core/admin_actions.py): a service call on the selected
  rows; a button on each object's page that runs it on that object.
- ``ObjectPage``: a page of its own at ``<id>/<path>/``, named
  ``admin:<app>_<model>_<name>``. The base checks the permission (403), looks the
  object up (a missing one: back to the admin's index with a message), checks
  what the object itself demands (403), and renders in the admin's frame. With a
  ``label`` it is also a button on the object's page leading there, and a
  changelist action that opens it for the one selected row.
- ``FormPage``: an ObjectPage showing a form whose valid submission runs a
  service through the same audited runners as the actions.

``PanelModelAdmin`` generates the URLs, the changelist actions and the buttons
from that one list, so a new action is one declaration, not a URL, a redirect
action and a button each written by hand.
"""

import uuid
from typing import NamedTuple

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.core.admin_actions import ActionOutcome, Declared, one_only_message
from apps.core.admin_helpers import (
    AuditedAdminMixin,
    VersionGuardedForm,
    admin_url,
    render_service_form,
)
from apps.core.models import VersionedModel
from apps.core.state import change_state


class Button(NamedTuple):
    """A button on an object's change page: runs the changelist action ``name``
    on the object (for a page: leads to the object's page). The buttons post
    to the changelist like the action menu, so both doors behave the same."""

    name: str
    label: str


class ObjectPage(Declared):
    name = ""  # the URL name's suffix: admin:<app>_<model>_<name>
    path = ""  # the URL's last segment: <id>/<path>/
    label = ""  # the button on the object's page (none when empty)
    action_name = ""  # the button's value and the changelist action's name (default: name)
    description = ""  # the changelist's menu entry (default: label)
    permission: str | tuple = ""
    methods = ("GET",)
    template = ""

    @property
    def button_name(self) -> str:
        return self.action_name or self.name

    def menu_entry(self) -> str:
        return self.description or self.label

    def url_for(self, obj) -> str:
        opts = obj._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{self.name}", args=(obj.pk,))

    def allowed_on(self, request, obj) -> bool:
        """What the object itself demands beyond ``permission`` (production's guard)."""
        return True

    def title(self, obj) -> str:
        return str(obj)

    def context(self, request, obj) -> dict:
        return {}

    def get(self, request, obj):
        return self.render(request, obj, self.context(request, obj))

    def view(self, request, object_id):
        if request.method not in self.methods:
            return HttpResponseNotAllowed(self.methods)
        if not self.allowed(request):
            raise PermissionDenied
        obj = self.modeladmin.get_object(request, unquote(object_id))
        if obj is None:
            return self.not_found(request, object_id)
        if not self.allowed_on(request, obj):
            raise PermissionDenied
        return getattr(self, request.method.lower())(request, obj)

    def not_found(self, request, object_id):
        # The admin's own answer: "… with ID “x” doesn't exist. Perhaps it was deleted?", to the index.
        return self.modeladmin._get_obj_does_not_exist_redirect(request, self.modeladmin.model._meta, object_id)

    def render(self, request, obj, context: dict, template: str = ""):
        """The page in the admin's frame: breadcrumbs to the object, the title."""
        modeladmin = self.modeladmin
        context = {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.model._meta,
            "original": obj,
            "title": self.title(obj),
            "has_view_permission": modeladmin.has_view_permission(request, obj),
            **context,
        }
        request.current_app = modeladmin.admin_site.name
        return TemplateResponse(request, template or self.template, context)

    def __call__(self, modeladmin, request, queryset):
        """The changelist action: to this page of the one selected object."""
        objects = list(queryset[:2])
        if len(objects) != 1:
            modeladmin.message_user(request, one_only_message(modeladmin, self.label), messages.ERROR)
            return None
        return HttpResponseRedirect(self.url_for(objects[0]))


class FormPage(ObjectPage):
    """A form on its own page (so errors show and it can be sent again) whose
    valid submission calls a service: ``perform`` returns the ActionOutcome of
    ``run_job_action`` / ``run_service_action``. A queued job: to its page;
    otherwise the page again, with the messages, the form kept as typed."""

    form_class = None
    methods = ("GET", "POST")
    submit = "Save"

    def intro(self, obj) -> str:
        return ""

    def initial(self, obj) -> dict:
        return {}

    def extra(self, obj) -> dict:
        """More context for the template (service_form.html shows ``public_key``)."""
        return {}

    def perform(self, request, obj, data) -> ActionOutcome:
        raise NotImplementedError

    def get(self, request, obj):
        return self.show(request, obj, self.form_class(initial=self.initial(obj)))

    def post(self, request, obj):
        form = self.form_class(request.POST, request.FILES, initial=self.initial(obj))
        if form.is_valid():
            outcome = self.perform(request, obj, form.cleaned_data)
            if outcome.jobs:
                return HttpResponseRedirect(admin_url(outcome.jobs[0]))
            if outcome.accepted:
                obj.refresh_from_db()
        return self.show(request, obj, form)

    def show(self, request, obj, form):
        return render_service_form(self.modeladmin, request, form, title=self.title(obj), submit=self.submit,
                                   intro=self.intro(obj), **self.extra(obj))


class PanelModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Base of the panel's model admins.

    State fields are never form fields here: statuses move only through the
    service functions, which the admin reaches through ``object_actions``
    (declared ObjectAction / ObjectPage objects, or ``(name, label)`` of an
    ``@admin.action`` method). A change to a versioned row goes through
    ``change_state`` so its ``state_version`` moves like any other change.
    """

    form = VersionGuardedForm
    change_form_template = "admin/pressluft/change_form.html"
    object_actions: tuple = ()
    search_ids_on_pk = True

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self.object_actions = tuple(
            entry if isinstance(entry, tuple) else entry.bind(self) for entry in type(self).object_actions
        )

    def declared(self, kind=Declared) -> list:
        return [entry for entry in self.object_actions if isinstance(entry, kind)]

    def get_urls(self):
        opts = self.model._meta
        pages = [
            path(f"<path:object_id>/{page.path}/", self.admin_site.admin_view(page.view),
                 name=f"{opts.app_label}_{opts.model_name}_{page.name}")
            for page in self.declared(ObjectPage)
        ]
        return [*pages, *super().get_urls()]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        for entry in self.declared():
            if entry.label and entry.allowed(request):
                actions[entry.button_name] = (entry, entry.button_name, entry.menu_entry())
        return actions

    def object_actions_for(self, request, obj) -> list[Button]:
        available = self.get_actions(request)
        buttons = []
        for entry in self.object_actions:
            if isinstance(entry, tuple):
                if entry[0] in available:
                    buttons.append(Button(*entry))
            elif entry.button_name in available and entry.shown(request, obj):
                buttons.append(Button(entry.button_name, entry.label))
        return buttons

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
