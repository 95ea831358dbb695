"""Logging in and out, API tokens, and the bootstrap admin."""

import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from axes.exceptions import AxesBackendPermissionDenied
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from axes.utils import reset as reset_axes_attempts
from django.conf import settings
from django.contrib import auth
from django.db import transaction
from django.db.models import Q
from django.middleware.csrf import get_token
from django.utils import timezone

from apps.accounts.lockout import LOCKOUT_MESSAGE, retry_after_seconds
from apps.accounts.models import TOKEN_PREFIX, AccountLock, ApiToken, User, hash_token_secret
from apps.audit import services as audit
from apps.core.errors import ApiError


def login(request, email: str, password: str) -> User:
    """Authenticate and start a 24-hour session (cookie ``session_token``).

    ``request`` is the Django HttpRequest; django-axes counts failures on it
    and locks the email+address pair out after too many, and the
    authentication backend (apps/accounts/backends.py) locks the email
    after more failures from any addresses.
    """
    audit.annotate(request, action="auth.login", resource_type="user", actor_name=email)
    email = email.lower()
    # Checked explicitly (not only inside authenticate) so a locked-out email
    # is refused even with the right password.
    if not AxesProxyHandler.is_allowed(request, {"username": email}):
        raise ApiError("login_locked_out", LOCKOUT_MESSAGE, {"retry_after": retry_after_seconds(request)})
    try:
        user = auth.authenticate(request=request, username=email, password=password)
    except AxesBackendPermissionDenied:
        user = None
    if getattr(request, "axes_locked_out", False):
        # AxesMiddleware replaces the response with the lockout answer (429).
        raise ApiError("login_locked_out", LOCKOUT_MESSAGE, {"retry_after": retry_after_seconds(request)})
    if user is None or not user.is_active or not user.is_staff:
        raise ApiError("invalid_credentials", "Unknown email or wrong password.")
    auth.login(request, user)
    get_token(request)  # sets the csrftoken cookie browser clients echo back
    audit.annotate(request, resource_id=user.pk)
    return user


def logout(request) -> None:
    audit.annotate(request, action="auth.logout", resource_type="user", resource_id=request.user.pk)
    auth.logout(request)


# --- the per-account login lock ---------------------------------------------


def _lock_key(email) -> str | None:
    """The email as locks know it; None for what no account can have."""
    key = (email or "").strip().lower() if isinstance(email, str) else ""
    max_length = AccountLock._meta.get_field("email").max_length
    return key if key and len(key) <= max_length else None


def _seconds_until(moment) -> int:
    return max(1, math.ceil((moment - timezone.now()).total_seconds()))


def account_lock_seconds(email) -> int:
    """Seconds the email stays locked for logins from any address (0: not locked)."""
    key = _lock_key(email)
    if key is None:
        return 0
    locked_until = AccountLock.objects.filter(email=key).values_list("locked_until", flat=True).first()
    if locked_until is None or locked_until <= timezone.now():
        return 0
    return _seconds_until(locked_until)


def record_login_failure(email) -> int:
    """Count a failed login for the email, from whatever address; returns the
    seconds the email is locked for now (0: not locked).

    Failures count up as long as no pause between two of them is longer than
    the lock; LOGIN_ACCOUNT_FAILURE_LIMIT of them lock the email for
    LOGIN_ACCOUNT_LOCK_HOURS. After a lock ends, counting starts again.
    """
    key = _lock_key(email)
    if key is None:
        return 0
    now = timezone.now()
    window = timedelta(hours=settings.LOGIN_ACCOUNT_LOCK_HOURS)
    with transaction.atomic():
        lock, created = AccountLock.objects.select_for_update().get_or_create(
            email=key, defaults={"last_failure_at": now}
        )
        if created:
            # Rows of emails nobody has tried for a while go, so guesses at
            # random emails do not pile up.
            AccountLock.objects.filter(last_failure_at__lt=now - window).filter(
                Q(locked_until__isnull=True) | Q(locked_until__lt=now)
            ).delete()
        elif lock.is_locked:
            return _seconds_until(lock.locked_until)
        elif lock.locked_until is not None or now - lock.last_failure_at > window:
            lock.failures, lock.locked_until = 0, None
        lock.failures += 1
        lock.last_failure_at = now
        if lock.failures >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
            lock.locked_until = now + window
        lock.save()
    return _seconds_until(lock.locked_until) if lock.locked_until else 0


def forget_login_failures(email) -> None:
    """The right password was given (while not locked): earlier failures are forgiven."""
    key = _lock_key(email)
    if key is not None:
        AccountLock.objects.filter(email=key, locked_until__isnull=True).delete()


@dataclass
class UnlockedAccount:
    email: str
    was_locked: bool  # for every address (the per-account lock)
    locked_addresses: int  # addresses django-axes had locked the email for
    failures: int  # failed logins the per-account lock had counted
    address_records_cleared: int  # django-axes' records of the email, one per address


def unlock_account(email: str, *, actor: audit.Actor, via: str = "") -> UnlockedAccount:
    """Let the email log in again now: end its per-account lock and clear its
    django-axes failures from every address. Audited as ``auth.unlock`` by ``actor``."""
    key = _lock_key(email)
    if key is None:
        raise ApiError("bad_request", "An email address is required.", {"fields": {"email": ["required"]}})
    with (audit.action(actor, "auth.unlock", resource_type="user", details={"via": via} if via else None)
          as attempt, transaction.atomic()):
        lock = AccountLock.objects.select_for_update().filter(email=key).first()
        was_locked = bool(lock and lock.is_locked)
        failures = lock.failures if lock else 0
        if lock:
            lock.delete()
        locked_addresses = AccessAttempt.objects.filter(
            username=key, failures_since_start__gte=settings.AXES_FAILURE_LIMIT
        ).count()
        address_records_cleared = reset_axes_attempts(username=key)
        account = User.objects.filter(email=key).first()
        attempt.describe(
            resource_id=account.pk if account else None,
            details={"email": key, "was_locked": was_locked, "locked_addresses": locked_addresses,
                     "failures": failures, "address_records_cleared": address_records_cleared},
        )
    return UnlockedAccount(key, was_locked, locked_addresses, failures, address_records_cleared)


def describe_unlock(unlocked: UnlockedAccount) -> str:
    """One sentence for the operator (the admin's message, the command's output)."""
    if unlocked.was_locked:
        state = "it was locked for every address"
    elif unlocked.locked_addresses:
        state = f"it was locked for {unlocked.locked_addresses} address(es)"
    else:
        state = "it was not locked"
    return (f"{unlocked.email}: unlocked; {state}. Cleared {unlocked.failures} counted failed logins "
            f"and {unlocked.address_records_cleared} per-address records.")


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
