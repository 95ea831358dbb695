"""OpenAPI generation helpers (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from apps.core.serializers import ErrorSerializer

_ERROR_TEXT = {
    400: "The request is invalid; nothing was changed.",
    401: "Not logged in, or the session or token is invalid.",
    404: "No such resource.",
    409: "The resource's state does not allow this now.",
    413: "The upload is larger than allowed; nothing was stored.",
    415: "The body has a media type this operation does not take.",
    429: "Too many attempts; wait before trying again.",
    502: "The node could not carry out the request.",
}

ERROR_RESPONSES = {status: OpenApiResponse(ErrorSerializer, description=text) for status, text in _ERROR_TEXT.items()}


def error_responses(*statuses: int) -> dict:
    return {status: ERROR_RESPONSES[status] for status in statuses}


def ok(serializer, description: str) -> OpenApiResponse:
    return OpenApiResponse(serializer, description=description)


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


def inline_list_responses(result, generator, request, public):
    """Lists are plain JSON arrays (pagination travels in the Link header), so the
    ``Paginated<X>List`` wrappers drf-spectacular names are only aliases of
    ``array of X``: inline them to keep the contract as the reference writes it."""
    schemas = result.get("components", {}).get("schemas", {})
    aliases = {
        f"#/components/schemas/{name}": schema
        for name, schema in schemas.items()
        if name.startswith("Paginated") and name.endswith("List") and schema.get("type") == "array"
    }

    def replace(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref in aliases and len(node) == 1:
                return dict(aliases[ref])
            return {key: replace(value) for key, value in node.items()}
        if isinstance(node, list):
            return [replace(item) for item in node]
        return node

    result["paths"] = replace(result.get("paths", {}))
    for ref in aliases:
        schemas.pop(ref.rsplit("/", 1)[1], None)
    return result
