"""OpenAPI generation helpers (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from apps.accounts.permissions import MANAGE_PRODUCTION
from apps.core.serializers import ErrorSerializer, StrictSerializer

_ERROR_TEXT = {
    400: "The request is invalid; nothing was changed.",
    401: "Not logged in, or the session or token is invalid.",
    403: "The account lacks a permission this needs (`permission_denied`, `details.missing` names it); "
         "nothing was changed.",
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


class PanelAutoSchema(AutoSchema):
    """Every operation whose view declares permissions (apps/accounts/permissions.py)
    says which, in ``x-required-permissions`` and in words, and documents the 403."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return operation
        if any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
            # Query parameters are validated (an unknown status, a limit out of range): say so.
            responses = operation["responses"]
            responses.setdefault("400", self._get_response_for_code(ERROR_RESPONSES[400], "400"))
            operation["responses"] = dict(sorted(responses.items()))
        requirement = getattr(self.view, "required_permissions", {}).get(self.method)
        if requirement is None:
            return operation
        permissions = list(requirement.permissions)
        text = "Needs the permission" + ("s " if len(permissions) > 1 else " ") + \
            ", ".join(f"`{name}`" for name in permissions) + "."
        if requirement.production_guard:
            text += f" On a production environment also `{MANAGE_PRODUCTION}`."
            operation["x-production-requires"] = MANAGE_PRODUCTION
        operation["description"] = f"{operation['description']}\n\n{text}" if operation.get("description") else text
        responses = operation["responses"]
        responses.setdefault("403", self._get_response_for_code(ERROR_RESPONSES[403], "403"))
        operation["responses"] = dict(sorted(responses.items()))
        operation["x-required-permissions"] = permissions
        return operation


    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        # A body that must name at least one field (min_properties) is itself required,
        # though each of its fields is optional.
        if body is not None and getattr(self.get_request_serializer(), "min_properties", None):
            body["required"] = True
        return body

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # What StrictSerializer refuses, the contract forbids: a field it does not know.
        if direction == "request" and isinstance(serializer, StrictSerializer) and schema.get("type") == "object":
            schema["additionalProperties"] = False
            if getattr(serializer, "min_properties", None):
                schema["minProperties"] = serializer.min_properties
        return schema


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
