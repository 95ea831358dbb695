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


class PanelProxyMiddleware:
    """A request the panel's own Nginx forwarded (the panel served on its
    control plane domain, apps/domains/panel_https.py) came over HTTPS from
    the address Nginx names in X-Real-IP: the scheme and REMOTE_ADDR are set
    so, before anything reads them (CSRF's origin check, secure cookies,
    absolute URLs, the login throttle, the audit log). Believed only from a
    loopback peer with the token only the panel and that Nginx know; the
    token header is dropped from every request either way."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from apps.core.client_address import parse_address
        from apps.core.panel_proxy import HEADER, forwarded_by_panel_proxy
        from pressluft.allowed_hosts import control_plane_domain

        meta = request.META
        if HEADER in meta:
            if forwarded_by_panel_proxy(meta, control_plane_domain.get()):
                meta["wsgi.url_scheme"] = "https"
                meta["HTTP_X_FORWARDED_PROTO"] = "https"
                client = parse_address(meta.get("HTTP_X_REAL_IP"))
                if client is not None:
                    meta["REMOTE_ADDR"] = str(client)
            del meta[HEADER]
        return self.get_response(request)
