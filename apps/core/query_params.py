"""Reading query parameters as the contract types them."""

import re

from apps.core.errors import ApiError

# What the contract's "integer" is in a query string: digits, an optional minus.
# Python's int() also takes " 7", "+7" and "7_000", which no client means.
_INTEGER = re.compile(r"-?[0-9]+")


def integer_param(request, name: str, default: int, minimum: int, maximum: int) -> int:
    """``?name=`` as an integer in [minimum, maximum]; absent: ``default``.
    Anything else, an empty value too, is a 400 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise ApiError("bad_request", f"{name} must be an integer.", {"fields": {name: ["not an integer"]}})
    try:
        value = int(raw)
    except ValueError:  # more digits than Python converts: out of any range here
        value = None
    if value is None or not minimum <= value <= maximum:
        bound = f"between {minimum} and {maximum}"
        raise ApiError("bad_request", f"{name} must be {bound}.", {"fields": {name: [f"must be {bound}"]}})
    return value
