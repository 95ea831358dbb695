"""Hostnames an operator may attach: checked strictly, IDNs in their ASCII
(punycode) form, never a wildcard, an address or anything with a port or path."""

import ipaddress
import re

import idna

from apps.core.errors import ApiError

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _refuse(hostname: str, why: str) -> ApiError:
    return ApiError("bad_request", f"{hostname!r} is not a hostname that can be attached: {why}.",
                    {"fields": {"hostname": [why]}})


def normalize(raw) -> str:
    """The ASCII, lower-case form of ``raw``, or ApiError 400 saying what is wrong."""
    if not isinstance(raw, str):
        raise _refuse(str(raw), "a hostname is text")
    hostname = raw.strip().rstrip(".")
    if not hostname:
        raise _refuse(raw, "it is empty")
    if "*" in hostname:
        raise _refuse(raw, "wildcards are not attached as domains")
    if any(char in hostname for char in "/:@?#[] \t\\"):
        raise _refuse(raw, "only the hostname, without scheme, port or path")
    try:
        ipaddress.ip_address(hostname)
        raise _refuse(raw, "an IP address is not a domain")
    except ValueError:
        pass
    try:
        ascii_name = idna.encode(hostname, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise _refuse(raw, f"not a valid internationalized name ({exc})") from None
    if len(ascii_name) > 253:
        raise _refuse(raw, "longer than 253 characters")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise _refuse(raw, "a domain needs at least two labels (example.com)")
    for label in labels:
        if not LABEL.match(label):
            raise _refuse(raw, f"the label {label!r} is not letters, digits and inner hyphens of at most 63 characters")
    if labels[-1].isdigit():
        raise _refuse(raw, "the top-level label cannot be all digits")
    return ascii_name
