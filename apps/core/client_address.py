"""The address a request really came from.

``X-Forwarded-For`` is written by whoever sends the request, so it is only
believed when the peer (``REMOTE_ADDR``) is one of the reverse proxies in
settings.TRUSTED_PROXIES (PRESSLUFT_TRUSTED_PROXIES). Each trusted proxy
appends the address it received the request from, so the header is read from
the right, past the trusted proxies, to the first address that is not one:
everything left of that was written by the client and proves nothing.

This one function feeds the login throttle, django-axes
(AXES_CLIENT_IP_CALLABLE) and the audit log.
"""

import functools
import ipaddress

from django.conf import settings

# A longer header is not from a sane chain of proxies: it is ignored.
MAX_FORWARDED_FOR_LENGTH = 1024

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value) -> IpAddress | None:
    """An IP address in canonical form (IPv4-mapped IPv6 as IPv4), or None
    for anything else: names, ports, zones, garbage."""
    if not isinstance(value, str) or not value or len(value) > 45:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if address.version == 6:
        if address.scope_id:
            return None
        if address.ipv4_mapped:
            return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def is_trusted_proxy(address: IpAddress) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request) -> str | None:
    """The client's IP address as text, or None when the peer's is unknown."""
    meta = getattr(request, "META", None) or {}
    peer = parse_address(meta.get("REMOTE_ADDR"))
    if peer is None or not is_trusted_proxy(peer):
        return str(peer) if peer is not None else None
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not isinstance(forwarded, str) or not forwarded or len(forwarded) > MAX_FORWARDED_FOR_LENGTH:
        return str(peer)
    hops = [hop.strip() for hop in forwarded.split(",")]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            # A hop that is no address means the chain cannot be followed: the
            # peer is the last address known to be real.
            return str(peer)
        if not is_trusted_proxy(address):
            return str(address)
    # Every hop is a trusted proxy: the request started at the leftmost one.
    return str(parse_address(hops[0]))
