from django.conf import settings
from django.shortcuts import render

from apps.core.errors import json_error
from apps.core.middleware import is_api_path

LOCKOUT_MESSAGE = "Too many failed logins. The account is locked; try again later."


def lockout_seconds() -> int:
    return int(float(settings.AXES_COOLOFF_TIME) * 3600)


def lockout_response(request, original_response=None, credentials=None):
    """django-axes lockout: JSON under /api/, a plain page for the admin."""
    retry_after = lockout_seconds()
    if is_api_path(request.path):
        response = json_error(429, "login_locked_out", LOCKOUT_MESSAGE, {"retry_after": retry_after})
    else:
        response = render(request, "accounts/locked_out.html", {"message": LOCKOUT_MESSAGE}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def login_username(request, credentials=None):
    """The email a login attempt was for, from the API (credentials) or the admin form."""
    username = (credentials or {}).get("username")
    if not username and request is not None and request.method == "POST":
        try:
            username = request.POST.get("username")
        except Exception:  # noqa: BLE001 - an unparsable body simply has no username
            username = None
    return username.strip().lower() if username else None
