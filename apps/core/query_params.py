"""Reading query parameters as the contract types them."""

import re

from apps.core.errors import ApiError

# What the contract's "integer" is in a query string: digits, an optional minus.
# Python's int() also takes " 7", "+7" and "7_000", which no client means.
_INTEGER = re.compile(r"-?[0-9]+")
# Past this many digits a value is beyond any bound here; int() of thousands of
# digits is refused (or slow), so such a value is read as +/-10**_MAX_DIGITS.
_MAX_DIGITS = 100


def integer_param(request, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    """``?name=`` as an integer in [minimum, maximum] (None: unbounded); absent:
    ``default``. Anything else, an empty value too, is a 400 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise ApiError("bad_request", f"{name} must be an integer.", {"fields": {name: ["not an integer"]}})
    digits = raw.lstrip("-").lstrip("0")
    sign = -1 if raw.startswith("-") else 1
    value = sign * 10**_MAX_DIGITS if len(digits) > _MAX_DIGITS else int(raw)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            bound = f"between {minimum} and {maximum}"
        else:
            bound = f"at least {minimum}" if minimum is not None else f"at most {maximum}"
        raise ApiError("bad_request", f"{name} must be {bound}.", {"fields": {name: [f"must be {bound}"]}})
    return value


def boolean_param(request, name: str, default: bool) -> bool:
    """``?name=true`` or ``?name=false`` (as the contract writes a boolean);
    absent: ``default``. Anything else is a 400 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise ApiError("bad_request", f"{name} must be true or false.", {"fields": {name: ["not true or false"]}})
    return raw == "true"
