import hmac

from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.accounts.models import TOKEN_PREFIX, ApiToken, hash_token_secret

# last_used_at is informative; writing it on every request would make reads write.
LAST_USED_RESOLUTION_SECONDS = 60


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer plt_<key_id>_<secret>`` with a personal API token."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        credential = credential.strip()
        if not credential.startswith(TOKEN_PREFIX) or credential.count("_") < 2:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        key_id, _, secret = credential[len(TOKEN_PREFIX) :].partition("_")
        token = ApiToken.objects.select_related("user").filter(key_id=key_id).first()
        if token is None or not hmac.compare_digest(token.secret_hash, hash_token_secret(secret)):
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if not token.is_usable:
            raise exceptions.AuthenticationFailed("API token is revoked or expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="pressluft"'


class SessionCookieAuthentication(authentication.SessionAuthentication):
    """The ``session_token`` cookie set by POST /api/login; writes need the CSRF token."""
