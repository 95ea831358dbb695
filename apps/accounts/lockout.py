from django.shortcuts import render

from apps.core.errors import json_error
from apps.core.middleware import is_api_path

LOCKOUT_MESSAGE = "Too many failed logins. The account is locked; try again later."


def lockout_response(request, original_response=None, credentials=None):
    """django-axes lockout: JSON under /api/, a plain page for the admin."""
    from django.conf import settings

    retry_after = int(float(settings.AXES_COOLOFF_TIME) * 3600)
    if is_api_path(request.path):
        response = json_error(429, "login_locked_out", LOCKOUT_MESSAGE, {"retry_after": retry_after})
    else:
        response = render(request, "accounts/locked_out.html", {"message": LOCKOUT_MESSAGE}, status=429)
    response["Retry-After"] = str(retry_after)
    return response
