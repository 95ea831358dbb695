"""OpenAPI generation helpers (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from apps.core.serializers import ErrorSerializer

_ERROR_TEXT = {
    400: "The request is invalid; nothing was changed.",
    401: "Not logged in, or the session or token is invalid.",
    404: "No such resource.",
    409: "The resource's state does not allow this now.",
    429: "Too many attempts; wait before trying again.",
    502: "The node could not carry out the request.",
}

ERROR_RESPONSES = {status: OpenApiResponse(ErrorSerializer, description=text) for status, text in _ERROR_TEXT.items()}


def error_responses(*statuses: int) -> dict:
    return {status: ERROR_RESPONSES[status] for status in statuses}


class SessionCookieScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.SessionCookieAuthentication"
    name = "sessionAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "session_token"}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Personal API token (plt_…)."}


def strip_generated_noise(result, generator, request, public):
    """Keep the checked-in contract stable and close to the reference's style."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                # The reference documents no per-operation cookie/CSRF parameters.
                operation.pop("x-csrf", None)
    return result
