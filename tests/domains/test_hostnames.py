"""Which hostnames can be attached: strict rules, IDNs in their ASCII form."""

import pytest

from apps.core.errors import ApiError
from apps.domains.hostnames import normalize


@pytest.mark.parametrize("raw, expected", [
    ("example.com", "example.com"),
    ("WWW.Example.COM.", "www.example.com"),
    ("  shop.example.com ", "shop.example.com"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("ÉCOLE.fr", "xn--cole-9oa.fr"),
    ("a-b.c-d.example", "a-b.c-d.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_valid_hostnames_in_ascii_lower_case(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", [
    "", " ", "*.example.com", "www.*.example.com", "example", "localhost", "203.0.113.7", "::1",
    "http://example.com", "example.com/path", "example.com:8443", "user@example.com", "exa mple.com",
    "-start.example.com", "end-.example.com", "under_score.example.com", "a..b.example", "example.123",
    "x" * 64 + ".example.com", ".".join(["abcdefghi"] * 26) + ".example", "xn--zz.example", "exa\x00mple.com",
    "ex\\ample.com",
])
def test_everything_else_is_refused_naming_the_field(raw):
    with pytest.raises(ApiError) as refused:
        normalize(raw)
    assert refused.value.code == "bad_request"
    assert "hostname" in refused.value.details["fields"]
