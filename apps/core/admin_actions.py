"""Operator actions in the admin: declared once, run through services, audited.

An ``ObjectAction`` is a small declaration — name, button label, permission,
audit action, the service call, the success text, an optional confirmation —
that ``PanelModelAdmin`` (apps/core/admin_pages.py) turns into a changelist
action (for the selected rows) and a button on each object's page. Running it
yields an ``ActionOutcome`` (what was accepted, which jobs were queued, what was
refused and why); where the browser goes next is decided from that outcome.
"""

import copy
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.admin import helpers as admin_forms
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from apps.audit import services as audit
from apps.core.admin_helpers import admin_url, job_link
from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError


@dataclass
class ActionOutcome:
    """What one run of an action did: per object, accepted or refused."""

    objects: list
    accepted: list = field(default_factory=list)  # (object, the changed object or the queued job)
    jobs: list = field(default_factory=list)  # the jobs queued, in the order of ``objects``
    refused: list = field(default_factory=list)  # (object, the ApiError the service raised)

    @property
    def single(self):
        """The one object acted on, or None when there were several (or none)."""
        return self.objects[0] if len(self.objects) == 1 else None


def outcome_redirect(request, outcome: ActionOutcome):
    """Where the browser goes after an action: to the job when one object queued
    one (its log shows the progress), back to the object when the button on its
    page was used, else None (the changelist, with the messages)."""
    if outcome.single is not None and outcome.jobs:
        return HttpResponseRedirect(admin_url(outcome.jobs[0]))
    if outcome.single is not None and request.POST.get("_return_to_object"):
        return HttpResponseRedirect(admin_url(outcome.single))
    return None


def _report_refusal(modeladmin, request, obj, exc, label):
    """A service refused (its audit entry says so): show the operator the API's own sentence."""
    modeladmin.message_user(request, f"{label(obj)}: {exc.message}", messages.ERROR)


def run_service_action(modeladmin, request, objects, *, action: str, call, done, label=str) -> ActionOutcome:
    """Apply a service function to each object, audit each attempt, and tell
    the operator what happened in plain words.

    ``call(obj)`` returns the changed object or raises ApiError, whose message
    is the same sentence an API client would get. ``done`` is the success text,
    or a function of the changed object returning it.
    """
    actor = audit.Actor.of_request(request)
    outcome = ActionOutcome(list(objects))
    for obj in outcome.objects:
        try:
            with audit.action(actor, action, resource=obj, details={"via": "admin"}) as attempt:
                changed = call(obj)
                if status := getattr(changed, "status", None):
                    attempt.describe(details={"status": status})
        except ApiError as exc:
            _report_refusal(modeladmin, request, obj, exc, label)
            outcome.refused.append((obj, exc))
            continue
        outcome.accepted.append((obj, changed))
        text = done(changed) if callable(done) else done
        modeladmin.message_user(request, f"{label(obj)}: {text}", messages.SUCCESS)
    return outcome


def run_job_action(modeladmin, request, objects, *, action: str, call, label=str, done="queued") -> ActionOutcome:
    """Like ``run_service_action``, for services that queue a job: ``call(obj)``
    returns the job (or raises ApiError). Each accepted request is audited with
    its job, so the job's outcome closes the entry."""
    actor = audit.Actor.of_request(request)
    outcome = ActionOutcome(list(objects))
    for obj in outcome.objects:
        try:
            with audit.action(actor, action, resource=obj, details={"via": "admin"}) as attempt:
                job = call(obj)
                attempt.describe(job=job)
        except ApiError as exc:
            _report_refusal(modeladmin, request, obj, exc, label)
            outcome.refused.append((obj, exc))
            continue
        outcome.accepted.append((obj, job))
        outcome.jobs.append(job)
        modeladmin.message_user(
            request, format_html("{}: {} job {}; its log shows the progress.", label(obj), done, job_link(job)),
            messages.SUCCESS,
        )
    return outcome


def confirm_action(modeladmin, request, queryset, *, title: str, question: str, button: str,
                   warnings=(), details=None, options=()):
    """The confirmation page of an admin action, or None once the operator confirmed.

    The page posts the same action and selection back to the changelist with
    ``post=yes``; ``details`` (label, value) rows describe each object;
    ``options`` (name, label) are checkboxes, unticked, posted with it
    (``request.POST.get(name) == "on"`` when ticked).
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
        "options": list(options),
        "objects": [(obj, details(obj) if details else []) for obj in objects],
        "opts": modeladmin.model._meta,
        "action_name": request.POST.get("action", ""),
        "return_to_object": request.POST.get("_return_to_object", ""),
        "action_checkbox_name": admin_forms.ACTION_CHECKBOX_NAME,
        "cancel_url": admin_url(objects[0]) if len(objects) == 1 else admin_url(modeladmin.model, "changelist"),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/pressluft/confirm_action.html", context)


class Declared:
    """Class attributes are the defaults; keyword arguments of an instance
    override them, so a one-off action is declared in one expression."""

    modeladmin = None  # set by bind(): the admin this declaration serves

    def __init__(self, **overrides):
        for key, value in overrides.items():
            if not hasattr(type(self), key):
                raise TypeError(f"{type(self).__name__} has no setting {key!r}")
            setattr(self, key, value)

    def bind(self, modeladmin):
        """A copy for one ModelAdmin instance (PanelModelAdmin binds its declarations)."""
        bound = copy.copy(self)
        bound.modeladmin = modeladmin
        return bound

    def allowed(self, request) -> bool:
        """The model-wide permission: without it, no button, no changelist entry, no page."""
        wanted = (self.permission,) if isinstance(self.permission, str) else tuple(self.permission)
        return request.user.has_perms(wanted)

    def shown(self, request, obj) -> bool:
        """Whether the object's page offers the button (its state, production);
        the service still decides and refuses anything else, with its reason."""
        return True


class ObjectAction(Declared):
    """One thing an operator does to the selected objects through a service.

    On an object's page it is a button that runs the changelist action of the
    same name on that one object (``_return_to_object``); from the changelist
    it runs on the whole selection. Set ``confirm`` (a dict of
    ``confirm_action`` arguments besides the queryset) to ask first.
    """

    name = ""  # the changelist action's name; also the value of the page's button
    label = ""  # the button on the object's page
    description = ""  # the changelist's menu entry; the label when empty
    permission: str | tuple = ""  # "app.codename" (or several) the user needs
    audit = ""  # the audit action, e.g. "environment.health_check"
    queues_job = True  # call() returns a Job; else the changed object
    done = "queued"  # the success text (for a service action: or a function of the changed object)
    confirm: dict | None = None
    one_only = False  # acts on exactly one selected object

    def call(self, request, obj):
        """The service call: a Job or the changed object, or ApiError to refuse."""
        raise NotImplementedError

    def check(self, request, obj) -> None:
        """Raise ApiError to refuse this object before the service is asked (audited)."""

    @property
    def button_name(self) -> str:
        return self.name

    def label_of(self, obj) -> str:
        return f"{obj._meta.verbose_name.capitalize()} {obj}"

    def menu_entry(self) -> str:
        return self.description or self.label

    def perform(self, request, objects) -> ActionOutcome:
        def call(obj):
            self.check(request, obj)
            return self.call(request, obj)

        runner = run_job_action if self.queues_job else run_service_action
        return runner(self.modeladmin, request, objects, action=self.audit, call=call, label=self.label_of,
                      done=self.done)

    def __call__(self, modeladmin, request, queryset):
        """The changelist action: Django calls it with the selection."""
        objects = list(queryset[:2]) if self.one_only else list(queryset)
        if self.one_only and len(objects) != 1:
            modeladmin.message_user(request, one_only_message(modeladmin, self.label), messages.ERROR)
            return None
        if (confirm := self.confirmation(objects)) is not None:
            page = confirm_action(modeladmin, request, objects, **confirm)
            if page is not None:
                return page
        return self.run(request, objects)

    def confirmation(self, objects) -> dict | None:
        """The ``confirm_action`` arguments for these objects, or None to act at once."""
        return self.confirm

    def run(self, request, objects):
        """Act on the (confirmed) objects and answer the browser."""
        return outcome_redirect(request, self.perform(request, objects))


def one_only_message(modeladmin, label: str) -> str:
    return f"Select exactly one {modeladmin.model._meta.verbose_name} for “{label}”."


class ResetFailedState(ObjectAction):
    """"Reset failed state" of sites and environments: the resource's reset
    service does the validation (failed -> active). Declared with the
    permission, the audit action and ``service`` (called with the object's id)."""

    name = "reset_failed_state"
    label = "Reset failed state"
    description = "Reset failed state (failed → active)"
    queues_job = False
    done = "reset; it is active again."
    service = None

    def call(self, request, obj):
        return self.service(obj.pk)

    def shown(self, request, obj):
        return obj.status == LifecycleStatus.FAILED
