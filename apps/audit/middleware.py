import logging

from apps.audit import services
from apps.core.middleware import is_api_path

logger = logging.getLogger(__name__)

MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def resource_from_url(match) -> tuple[str, str]:
    """(type, id) of the object a route names, for requests refused before a
    view could say: every route names it ``id`` and is named ``<type>-...``."""
    if match is None or not match.kwargs.get("id"):
        return "", ""
    return (match.url_name or "").split("-", 1)[0], str(match.kwargs["id"])


class AuditMiddleware:
    """One audit entry for every mutating API request, whatever its outcome."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method in MUTATING_METHODS and is_api_path(request.path):
            try:
                self._record(request, response)
            except Exception:  # noqa: BLE001 - auditing must not turn a success into an error
                logger.exception("could not write the audit entry for %s %s", request.method, request.path)
        return response

    def _record(self, request, response):
        info = getattr(request, services.AUDIT_ATTRIBUTE, {})
        match = getattr(request, "resolver_match", None)
        action = info.get("action") or (
            f"{request.method.lower()} {match.url_name}" if match and match.url_name else f"{request.method} {request.path}"
        )
        url_type, url_id = resource_from_url(match)
        resource_id = info.get("resource_id") or url_id
        resource_type = info.get("resource_type") or (url_type if resource_id == url_id else "")
        job = info.get("job")
        user = getattr(request, "user", None)
        services.record(
            user=user,
            actor=info.get("actor", ""),
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            result=services.result_for_status(response.status_code, job is not None),
            job=job,
            status_code=response.status_code,
            client_address=services.client_address(request),
            details=info.get("details"),
        )
