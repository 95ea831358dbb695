"""Writing the audit log. One entry per mutating request (the middleware) or
admin action (the admin calls ``record``); job results close their entry."""

from django.conf import settings

from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry

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
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


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
        client_address=client_address,
        details=details or {},
    )
