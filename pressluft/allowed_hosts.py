"""Which ``Host`` headers the panel answers to (Django's ALLOWED_HOSTS).

Without PRESSLUFT_ALLOWED_HOSTS the list is derived: the loopback names, the
host of PRESSLUFT_LISTEN (or, when it listens on every address, this
machine's own addresses, so the URL scripts/run prints works), and the
control plane domain an operator sets in the admin (or
PRESSLUFT_CONTROL_PLANE_DOMAIN, which wins). That domain lives in the
database and may change while the panel runs, so it is read at request time.

Imported by the settings module: nothing here may import Django models at
module level.
"""

import ipaddress
import logging
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
WILDCARD_LISTEN_HOSTS = {"0.0.0.0", "::"}
# How long a gunicorn worker trusts its copy of the control plane domain.
CONTROL_PLANE_DOMAIN_TTL = 30.0


def listen_host(listen: str) -> str:
    """The host part of PRESSLUFT_LISTEN: ``HOST:PORT``, ``[IPV6]:PORT`` or a bare
    port (loopback), as scripts/run reads it."""
    listen = listen.strip()
    if listen.isdigit():
        return "127.0.0.1"
    if listen.startswith("["):
        return listen[1:].split("]", 1)[0]
    return listen.rsplit(":", 1)[0]


def host_pattern(host: str) -> str:
    """How ALLOWED_HOSTS spells a host: IPv6 addresses in brackets, names in lower case."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower()
    return f"[{address}]" if address.version == 6 else str(address)


def machine_addresses() -> list[str]:
    """This machine's IPv4 and IPv6 addresses (no link-local ones: a Host header
    cannot carry their zone), read from /proc; empty where that is unavailable."""
    found: list[str] = []
    try:
        last_seen = None
        # The kernel's local routing table: each address of the machine is a "/32 host LOCAL" leaf.
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            entry = line.strip()
            if entry.startswith("|-- "):
                last_seen = entry[4:]
            elif entry.startswith("/32 host LOCAL") and last_seen:
                found.append(last_seen)
    except OSError:
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            fields = line.split()
            if len(fields) < 4 or fields[3] == "20":  # scope 0x20: link-local
                continue
            found.append(str(ipaddress.IPv6Address(int(fields[0], 16))))
    except (OSError, ValueError):
        pass
    return list(dict.fromkeys(found))


def derived_allowed_hosts(listen: str, addresses_of_this_machine=machine_addresses) -> list[str]:
    """ALLOWED_HOSTS from PRESSLUFT_LISTEN alone (the control plane domain is added at request time)."""
    host = listen_host(listen)
    hosts = list(LOOPBACK_HOSTS)
    if host in WILDCARD_LISTEN_HOSTS or host == "":
        hosts += [host_pattern(address) for address in addresses_of_this_machine()]
    else:
        hosts.append(host_pattern(host))
    return list(dict.fromkeys(hosts))


class ControlPlaneDomainCache:
    """The control plane domain from PanelSettings, re-read at most every
    ``ttl`` seconds. A failed read (no table yet, database away) keeps the
    last known value: host validation must never turn into a server error."""

    def __init__(self, ttl: float = CONTROL_PLANE_DOMAIN_TTL):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value = ""
        self._read_at: float | None = None

    def get(self) -> str:
        variable = _from_environment()
        if variable is not None:
            return variable
        now = time.monotonic()
        with self._lock:
            if self._read_at is not None and now - self._read_at < self.ttl:
                return self._value
            self._read_at = now
        try:
            from apps.core.models import PanelSettings

            value = PanelSettings.objects.filter(pk=1).values_list("control_plane_domain", flat=True).first() or ""
        except Exception:  # see the class docstring
            logger.debug("control plane domain not readable; keeping %r", self._value, exc_info=True)
            return self._value
        with self._lock:
            self._value = value.strip().lower()
            return self._value

    def forget(self) -> None:
        """Read the database again on the next request (after the admin changed the domain)."""
        with self._lock:
            self._read_at = None


def _from_environment() -> str | None:
    """PRESSLUFT_CONTROL_PLANE_DOMAIN in its ASCII form (it wins over the
    database); None when unset, "" when it is not a hostname."""
    from django.conf import settings

    raw = (getattr(settings, "CONTROL_PLANE_DOMAIN_FROM_ENVIRONMENT", "") or "").strip()
    if not raw:
        return None
    from apps.core.errors import ApiError
    from apps.domains.hostnames import normalize

    try:
        return normalize(raw)
    except ApiError:
        logger.warning("PRESSLUFT_CONTROL_PLANE_DOMAIN=%r is not a hostname; ignored", raw)
        return ""


control_plane_domain = ControlPlaneDomainCache()


class PanelAllowedHosts(list):
    """ALLOWED_HOSTS that also holds the control plane domain of the moment.

    Django checks a Host header by iterating ALLOWED_HOSTS
    (``django.http.request.validate_host``), so the domain joins the fixed
    names there; every other use of the setting sees the same list.
    """

    def __iter__(self):
        yield from super().__iter__()
        domain = control_plane_domain.get()
        if domain:
            yield domain
