from django.http import HttpResponseForbidden
from django.views.defaults import page_not_found, server_error

from apps.core.errors import json_error
from apps.core.middleware import is_api_path


def csrf_failure(request, reason=""):
    if is_api_path(request.path):
        return json_error(
            403,
            "csrf_failed",
            "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.",
        )
    return HttpResponseForbidden("CSRF verification failed. Reload the page and try again.")


def not_found(request, exception=None):
    if is_api_path(request.path):
        return json_error(404, "not_found", f"No API resource at {request.path}.")
    return page_not_found(request, exception)


def internal_error(request):
    if is_api_path(request.path):
        return json_error(500, "internal_error")
    return server_error(request)
