from django.conf import settings
from django.shortcuts import render

from apps.core.errors import json_error
from apps.core.middleware import is_api_path

LOCKOUT_MESSAGE = "Too many failed logins. The account is locked; try again later, or ask an administrator to unlock it."


# Set on the request by the authentication backend when the per-account lock
# refused it: seconds left of that lock (the answer's Retry-After).
ACCOUNT_LOCK_ATTRIBUTE = "pressluft_account_lock_seconds"


def lockout_seconds() -> int:
    return int(float(settings.AXES_COOLOFF_TIME) * 3600)


def retry_after_seconds(request) -> int:
    """How long the lock that refused this login lasts: the per-account lock's
    remaining time, or else django-axes' cool-off."""
    return getattr(request, ACCOUNT_LOCK_ATTRIBUTE, None) or lockout_seconds()


def lockout_response(request, original_response=None, credentials=None):
    """django-axes lockout (and the per-account lock, which reuses it): JSON
    under /api/, a plain page for the admin."""
    retry_after = retry_after_seconds(request)
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
