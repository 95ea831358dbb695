"""Writing the audit log: one entry per operator action, whoever runs it.

Every action goes through ``action()``: the code that runs it knows who acts
(an ``Actor``: a user, or ``manage.py <command>``), opens the context around
the attempt, fills in what it learns (resource, job, details), and the entry is
written once on the way out with the outcome. API requests are opened by the
middleware, which knows the HTTP status; their views describe the action with
``annotate``. Job results close their entry (apps.jobs.services).
"""

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.client_address import client_address as real_client_address
from apps.core.client_address import parse_address
from apps.core.errors import ApiError

logger = logging.getLogger(__name__)

_REQUEST_ACTION = "_pressluft_audit_action"


def client_address(request) -> str | None:
    """Where the request came from: REMOTE_ADDR, or X-Forwarded-For read past
    the trusted proxies (see apps.core.client_address)."""
    return real_client_address(getattr(request, "_request", request))


@dataclass(frozen=True)
class Actor:
    """Who runs an action: a signed-in user (with the address they came
    from), or a named system actor such as ``manage.py register_node``."""

    user: object = None
    name: str = ""
    client_address: str | None = None

    @classmethod
    def command(cls, command: str) -> "Actor":
        return cls(name=f"manage.py {command}")

    @classmethod
    def of_request(cls, request, name: str = "") -> "Actor":
        raw = getattr(request, "_request", request)
        return cls(user=getattr(raw, "user", None), name=name, client_address=client_address(raw))


@dataclass
class AuditedAction:
    """What the code running an action tells the audit log about it."""

    actor: Actor
    action: str
    resource_type: str = ""
    resource_id: str = ""
    job: object = None
    details: dict = field(default_factory=dict)
    # Set by the API middleware: the response's status decides the outcome.
    status_code: int | None = None
    wrote_nothing: bool = False

    def changed_nothing(self) -> None:
        """The action turned out to change nothing (an idempotent command run
        again): no entry, as the admin writes none for a save without changes."""
        self.wrote_nothing = True

    def describe(self, *, action: str | None = None, resource=None, resource_type: str | None = None,
                 resource_id=None, job=None, details: dict | None = None, actor_name: str | None = None) -> None:
        if action:
            self.action = action
        if resource is not None:
            self.resource_type = resource._meta.model_name
            self.resource_id = str(resource.pk)
        if resource_type:
            self.resource_type = resource_type
        if resource_id is not None:
            self.resource_id = str(resource_id)
        if job is not None:
            self.job = job
        if details:
            self.details.update(details)
        if actor_name:
            self.actor = Actor(user=self.actor.user, name=actor_name, client_address=self.actor.client_address)

    def outcome(self, error: BaseException | None) -> str:
        if self.status_code is not None:
            return result_for_status(self.status_code, self.job is not None)
        if error is not None:
            return AuditResult.FAILED
        return AuditResult.ACCEPTED if self.job is not None else AuditResult.SUCCEEDED


def result_for_status(status_code: int, has_job: bool) -> str:
    if status_code in (401, 403, 429):
        return AuditResult.DENIED
    if status_code >= 400:
        return AuditResult.FAILED
    if has_job:
        return AuditResult.ACCEPTED
    return AuditResult.SUCCEEDED


@contextmanager
def action(actor: Actor, action: str, *, resource=None, resource_type: str = "", resource_id="",
           details: dict | None = None):
    """Run an operator action and write its one audit entry.

    Yields an ``AuditedAction`` the code fills in (``describe``). On the way
    out the entry is written: ``accepted`` when a job was handed the work,
    ``succeeded`` otherwise, ``failed`` when the block raised (an ApiError's
    code and message go into the details); the exception propagates.
    """
    attempt = AuditedAction(actor=actor, action=action, resource_type=resource_type,
                            resource_id=str(resource_id or ""), details=dict(details or {}))
    if resource is not None:
        attempt.describe(resource=resource)
    try:
        yield attempt
    except Exception as exc:
        if isinstance(exc, ApiError):
            attempt.details.update({"code": exc.code, "message": exc.message})
        _write(attempt, attempt.outcome(exc))
        raise
    if not attempt.wrote_nothing:
        _write(attempt, attempt.outcome(None))


@contextmanager
def request_action(request):
    """``action`` for one mutating API request, opened by the middleware: the
    view describes it through ``annotate``, the middleware sets the response's
    status, which decides the outcome. Who acted is read once the request is
    done (the view authenticates, or logs in). A failure to write is logged,
    never raised: auditing must not turn a success into an error."""
    attempt = AuditedAction(actor=Actor(), action="")
    setattr(request, _REQUEST_ACTION, attempt)
    yield attempt
    attempt.actor = Actor.of_request(request, name=attempt.actor.name)
    try:
        _write(attempt, attempt.outcome(None))
    except Exception:  # noqa: BLE001 - auditing must not turn a success into an error
        logger.exception("could not write the audit entry for %s %s", request.method, request.path)


def annotate(request, **description) -> None:
    """Describe the action of this API request (call from API views and the
    services they call); keywords as ``AuditedAction.describe``."""
    raw = getattr(request, "_request", request)
    attempt = getattr(raw, _REQUEST_ACTION, None)
    if attempt is None:
        # Outside the middleware (a request that is not audited): nothing to describe.
        attempt = AuditedAction(actor=Actor(), action="")
        setattr(raw, _REQUEST_ACTION, attempt)
    attempt.describe(**description)


def _write(attempt: AuditedAction, result: str) -> AuditEntry:
    return record(
        user=attempt.actor.user,
        actor=attempt.actor.name,
        action=attempt.action,
        resource_type=attempt.resource_type,
        resource_id=attempt.resource_id,
        result=result,
        job=attempt.job,
        status_code=attempt.status_code,
        client_address=attempt.actor.client_address,
        details=attempt.details,
    )


def record(*, user=None, actor: str = "", action: str, resource=None, resource_type: str = "",
           resource_id="", result: str, job=None, status_code: int | None = None,
           client_address: str | None = None, details: dict | None = None) -> AuditEntry:
    """Write one entry as given. Operator actions use ``action()``; this is
    its writer, kept public for fixtures that need an entry of their own."""
    if resource is not None:
        resource_type = resource._meta.model_name
        resource_id = str(resource.pk)
    if user is not None and getattr(user, "is_authenticated", False):
        actor = actor or user.email
    else:
        user = None
    return AuditEntry.objects.create(
        user=user,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id or ""),
        result=result,
        job=job,
        status_code=status_code,
        # Whatever a caller passes, a value that is no IP address is stored as
        # unknown: it must never cost the entry itself.
        client_address=str(address) if (address := parse_address(client_address)) else None,
        details=details or {},
    )
