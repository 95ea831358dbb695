"""Logging in and out, API tokens, and the bootstrap admin."""

import secrets
from dataclasses import dataclass

from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.proxy import AxesProxyHandler
from django.contrib import auth
from django.middleware.csrf import get_token
from django.utils import timezone

from apps.accounts.lockout import LOCKOUT_MESSAGE, lockout_seconds
from apps.accounts.models import TOKEN_PREFIX, ApiToken, User, hash_token_secret
from apps.audit import services as audit
from apps.core.errors import ApiError


def login(request, email: str, password: str) -> User:
    """Authenticate and start a 24-hour session (cookie ``session_token``).

    ``request`` is the Django HttpRequest; django-axes counts failures on it
    and locks the email+address pair out after too many.
    """
    audit.annotate(request, action="auth.login", resource_type="user")
    getattr(request, audit.AUDIT_ATTRIBUTE)["actor"] = email
    email = email.lower()
    # Checked explicitly (not only inside authenticate) so a locked-out email
    # is refused even with the right password.
    if not AxesProxyHandler.is_allowed(request, {"username": email}):
        raise ApiError("login_locked_out", LOCKOUT_MESSAGE, {"retry_after": lockout_seconds()})
    try:
        user = auth.authenticate(request=request, username=email, password=password)
    except AxesBackendPermissionDenied:
        user = None
    if getattr(request, "axes_locked_out", False):
        # AxesMiddleware replaces the response with the lockout answer (429).
        raise ApiError("login_locked_out", LOCKOUT_MESSAGE, {"retry_after": lockout_seconds()})
    if user is None or not user.is_active or not user.is_staff:
        raise ApiError("invalid_credentials", "Unknown email or wrong password.")
    auth.login(request, user)
    get_token(request)  # sets the csrftoken cookie browser clients echo back
    audit.annotate(request, resource_id=user.pk)
    return user


def logout(request) -> None:
    audit.annotate(request, action="auth.logout", resource_type="user", resource_id=request.user.pk)
    auth.logout(request)


@dataclass
class IssuedToken:
    token: ApiToken
    plaintext: str


def create_api_token(user: User, name: str, expires_at=None) -> IssuedToken:
    """Create a token; the plaintext is returned once and never stored."""
    key_id, secret = ApiToken.new_key_material()
    token = ApiToken.objects.create(
        user=user, name=name, key_id=key_id, secret_hash=hash_token_secret(secret), expires_at=expires_at
    )
    return IssuedToken(token, f"{TOKEN_PREFIX}{key_id}_{secret}")


def revoke_api_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        token.revoked_at = timezone.now()


@dataclass
class AdminAccount:
    user: User
    created: bool
    generated_password: str | None


def ensure_admin(email: str | None, password: str | None) -> AdminAccount:
    """Create or update the bootstrap admin.

    With an email and password: that account exists with that password. Without
    them: if any superuser exists nothing changes; otherwise ``admin@localhost``
    is created with a generated password, returned once for printing.
    """
    if email:
        email = email.strip().lower()
        user = User.objects.filter(email=email).first()
        created = user is None
        if created:
            user = User.objects.create_superuser(email, password or None)
        user.is_staff = user.is_superuser = user.is_active = True
        generated = None
        if password:
            user.set_password(password)
        elif created:
            generated = secrets.token_urlsafe(12)
            user.set_password(generated)
        user.save()
        return AdminAccount(user, created, generated)
    existing = User.objects.filter(is_superuser=True, is_active=True).order_by("date_joined").first()
    if existing:
        return AdminAccount(existing, False, None)
    generated = secrets.token_urlsafe(12)
    user = User.objects.create_superuser("admin@localhost", generated)
    return AdminAccount(user, True, generated)
