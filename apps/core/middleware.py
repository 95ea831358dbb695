import json
import logging

from apps.core.errors import json_error

logger = logging.getLogger(__name__)


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class ApiErrorMiddleware:
    """Under /api/, no error leaves as HTML: whatever layer produced it
    (URL resolver, CSRF, request parsing, an exception in middleware), the
    client gets the JSON error shape with the same status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not is_api_path(request.path) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json") and _is_error_shape(response):
            return response
        converted = json_error(response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                converted[header] = response[header]
        return converted

    def process_exception(self, request, exception):
        if not is_api_path(request.path):
            return None
        logger.exception("unexpected error under /api/", exc_info=exception)
        return json_error(500, "internal_error")


def _is_error_shape(response) -> bool:
    if getattr(response, "streaming", False):
        return False
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return False
    return isinstance(body, dict) and "code" in body and "message" in body
