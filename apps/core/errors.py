"""API errors: the registry of codes and the one JSON shape every error takes.

Every error an API client can see is ``{"code", "message", "details"?}``.
Codes are registered here with their HTTP status; docs/error-codes.md lists
them and a test keeps the two and the code base in step.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)

# code -> (HTTP status, meaning)
API_ERROR_CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "The request body or parameters are invalid."),
    "unauthorized": (401, "Authentication is missing, invalid or expired."),
    "invalid_credentials": (401, "Login failed: unknown email or wrong password."),
    "forbidden": (403, "Authenticated, but not allowed to do this."),
    "permission_denied": (403, "The account lacks a permission this needs; details name it."),
    "csrf_failed": (403, "A cookie-authenticated write came without a valid CSRF token."),
    "not_found": (404, "No such resource (or no such API path)."),
    "method_not_allowed": (405, "The path exists but not with this HTTP method."),
    "not_acceptable": (406, "The client accepts no representation the API can give (JSON)."),
    "conflict": (409, "The resource's state does not allow this, or it changed meanwhile."),
    "job_not_cancellable": (409, "The job has already ended and cannot be cancelled."),
    "job_not_retryable": (409, "Only a failed or cancelled job can be retried, once its resources are reset."),
    "resource_not_failed": (409, "Reset applies only to a resource in the failed state."),
    "reset_validation_failed": (409, "The resource cannot be reset yet; details say why."),
    "environment_not_active": (409, "The environment is not active."),
    "drift_no_baseline": (409, "No baseline of production to check drift against (production itself, or a copy made without one)."),
    "promotion_drifted": (409, "Production changed, since the source's baseline, data a promotion would overwrite."),
    "promotion_drift_unknown": (409, "The source's drift is unknown: run a drift check before promoting."),
    "promotion_source_is_production": (409, "Production is what a staging or clone environment is promoted into."),
    "promotion_target_invalid": (409, "The target is not the source's site's production environment (on its node)."),
    "backup_storage_not_configured": (409, "Backups are off: no S3-compatible backup storage is configured."),
    "domain_exists": (409, "The hostname is attached (or being attached) already; a hostname belongs to one environment."),
    "domain_not_ready": (409, "The domain has no certificate yet, so it cannot be the primary one."),
    "backup_not_restorable": (409, "The backup is not completed (pending, running, failed or expired)."),
    "backup_of_another_site": (409, "The backup belongs to another site; a site is restored only from its own backups."),
    "backup_site_deleted": (409, "The backup's site is deleted: there is no site to restore it into."),
    "archive_invalid": (400, "The uploaded archive was refused; details list every problem found."),
    "request_too_large": (413, "The request body is larger than allowed."),
    "upload_too_large": (413, "The uploaded archive is larger than the configured limit."),
    "unsupported_media_type": (415, "The request body must be JSON."),
    "too_many_requests": (429, "Too many requests; retry after the given delay."),
    "login_locked_out": (429, "Too many failed logins; the account is locked for a while."),
    "internal_error": (500, "An unexpected error; it was logged on the server."),
    "node_unreachable": (502, "The node could not be reached over SSH in time."),
    "ssh_auth_failed": (502, "The node refused the panel's SSH key."),
    "host_key_mismatch": (502, "The node's SSH host key is not the pinned one."),
    "wp_cli_error": (502, "The WordPress command on the node failed."),
}

STATUS_DEFAULT_CODE = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class ApiError(Exception):
    """An error with a registered code; the exception handler renders it."""

    def __init__(self, code: str, message: str, details: dict | None = None, status: int | None = None):
        if code not in API_ERROR_CODES:
            raise ValueError(f"unregistered API error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status or API_ERROR_CODES[code][0]


class PermissionMissing(ApiError, drf.PermissionDenied):
    """The user lacks permissions (``missing``, e.g. ``environments.deploy_environment``).

    Also a DRF PermissionDenied, so DRF code that expects one (the OPTIONS
    metadata, for instance) treats it as such.
    """

    def __init__(self, missing: list[str], message: str | None = None):
        if message is None:
            message = "You lack the permission this needs: " + ", ".join(missing) + "."
        ApiError.__init__(self, "permission_denied", message, {"missing": list(missing)})
        self.detail = drf.ErrorDetail(message, code="permission_denied")
        self.missing = list(missing)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    body = {"code": code, "message": message}
    if details:
        body["details"] = details
    return body


def json_error(status: int, code: str | None = None, message: str | None = None, details=None):
    code = code or STATUS_DEFAULT_CODE.get(status, "internal_error" if status >= 500 else "bad_request")
    message = message or API_ERROR_CODES.get(code, (status, "Request failed."))[1]
    return JsonResponse(error_body(code, message, details), status=status)


def _flatten_validation(detail) -> dict:
    """DRF validation detail -> {field: [messages]} (non-field errors under "non_field_errors")."""
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_messages(item))
        return out
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    return [str(value)]


def _validation_message(fields: dict) -> str:
    first_field, messages = next(iter(fields.items()))
    text = messages[0] if messages else "invalid value"
    if first_field == "non_field_errors":
        return text
    return f"{first_field}: {text}"


def api_exception_handler(exc, context):
    """DRF exception handler: every exception becomes ``{code, message, details?}``."""
    headers = {}
    if isinstance(exc, ApiError):
        if exc.details and "retry_after" in exc.details:
            headers["Retry-After"] = str(exc.details["retry_after"])
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status, headers=headers)
    if isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", "The request body is larger than allowed."), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("bad_request", "The request was refused as malformed."), status=400)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, drf.ValidationError):
        fields = _flatten_validation(exc.detail)
        return Response(
            error_body("bad_request", _validation_message(fields), {"fields": fields}), status=400
        )
    if isinstance(exc, drf.ParseError):
        return Response(error_body("bad_request", f"Malformed request body: {exc.detail}"), status=400)
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        auth_header = _authenticate_header(context)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        return Response(error_body("unauthorized", str(exc.detail)), status=401, headers=headers)
    if isinstance(exc, drf.PermissionDenied):
        detail = str(exc.detail)
        if detail.startswith("CSRF Failed"):
            return Response(
                error_body(
                    "csrf_failed",
                    "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.",
                ),
                status=403,
            )
        return Response(error_body("forbidden", detail), status=403)
    if isinstance(exc, drf.Throttled):
        if exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        return Response(
            error_body("too_many_requests", "Too many requests; slow down.", {"retry_after": exc.wait}),
            status=429,
            headers=headers,
        )
    if isinstance(exc, drf.APIException):
        status = exc.status_code
        code = STATUS_DEFAULT_CODE.get(status, "internal_error" if status >= 500 else "bad_request")
        return Response(error_body(code, str(exc.detail)), status=status)

    logger.exception("unexpected error in API view", exc_info=exc)
    return Response(error_body("internal_error", API_ERROR_CODES["internal_error"][1]), status=500)


def _authenticate_header(context) -> str | None:
    view = context.get("view")
    request = context.get("request")
    if view is None or request is None:
        return None
    try:
        return view.get_authenticate_header(request)
    except Exception:  # noqa: BLE001 - a header is a nicety, never a reason to fail
        return None
