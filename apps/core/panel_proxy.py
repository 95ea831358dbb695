"""The panel's own Nginx in front of it (apps/domains/panel_https.py): the
token it sends, and what the panel believes of a request it forwarded.

Imported by middleware: nothing here may import models at module level.
"""

from django.utils.crypto import constant_time_compare, salted_hmac

from apps.core.client_address import parse_address

HEADER = "HTTP_X_PRESSLUFT_PROXY"
TOKEN_SALT = "pressluft.panel-https.proxy-token"


def proxy_token(hostname: str) -> str:
    """What the panel's Nginx sends in X-Pressluft-Proxy for ``hostname``
    (derived from the secret key: nothing to store, and a new key makes it new)."""
    return salted_hmac(TOKEN_SALT, hostname, algorithm="sha256").hexdigest()


def _host(meta) -> str:
    host = (meta.get("HTTP_HOST") or "").strip().lower()
    if host.startswith("["):
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def forwarded_by_panel_proxy(meta, domain: str) -> bool:
    """A loopback peer with the token of the control plane domain, for that host."""
    token = meta.get(HEADER)
    peer = parse_address(meta.get("REMOTE_ADDR"))
    return bool(domain and isinstance(token, str) and peer is not None and peer.is_loopback
                and _host(meta) == domain and constant_time_compare(token, proxy_token(domain)))
