from apps.audit import services
from apps.core.middleware import is_api_path

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
        if request.method not in MUTATING_METHODS or not is_api_path(request.path):
            return self.get_response(request)
        with services.request_action(request) as attempt:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            attempt.status_code = response.status_code
            if not attempt.action:
                attempt.action = (
                    f"{request.method.lower()} {match.url_name}" if match and match.url_name
                    else f"{request.method} {request.path}"
                )
            url_type, url_id = resource_from_url(match)
            if not attempt.resource_id:
                attempt.resource_id = url_id
            if attempt.resource_id == url_id and not attempt.resource_type:
                attempt.resource_type = url_type
        return response
