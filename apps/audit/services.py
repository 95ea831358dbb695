"""Writing the audit log. One entry per mutating request (the middleware) or
admin action (the admin calls ``record``); job results close their entry."""

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.core.client_address import client_address as real_client_address
from apps.core.client_address import parse_address

AUDIT_ATTRIBUTE = "_pressluft_audit"


def annotate(request, *, action: str | None = None, resource=None, resource_type: str | None = None,
             resource_id=None, job=None, details: dict | None = None) -> None:
    """Tell the audit middleware what this request did (call from API views)."""
    raw = getattr(request, "_request", request)
    info = getattr(raw, AUDIT_ATTRIBUTE, {})
    if action:
        info["action"] = action
    if resource is not None:
        info["resource_type"] = resource._meta.model_name
        info["resource_id"] = str(resource.pk)
    if resource_type:
        info["resource_type"] = resource_type
    if resource_id is not None:
        info["resource_id"] = str(resource_id)
    if job is not None:
        info["job"] = job
    if details:
        info.setdefault("details", {}).update(details)
    setattr(raw, AUDIT_ATTRIBUTE, info)


def client_address(request) -> str | None:
    """Where the request came from: REMOTE_ADDR, or X-Forwarded-For read past
    the trusted proxies (see apps.core.client_address)."""
    return real_client_address(getattr(request, "_request", request))


def result_for_status(status_code: int, has_job: bool) -> str:
    if status_code in (401, 403, 429):
        return AuditResult.DENIED
    if status_code >= 400:
        return AuditResult.FAILED
    if has_job:
        return AuditResult.ACCEPTED
    return AuditResult.SUCCEEDED


def record(*, user=None, actor: str = "", action: str, resource=None, resource_type: str = "",
           resource_id="", result: str, job=None, status_code: int | None = None,
           client_address: str | None = None, details: dict | None = None) -> AuditEntry:
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
