"""Every API route, from the apps' URL confs that pressluft/urls.py mounts under /api/."""

from django.urls import URLResolver

from pressluft.urls import api_patterns


def api_url_patterns(patterns=api_patterns, prefix: str = ""):
    """(route without the /api/ prefix, URLPattern) for every API route, in order."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from api_url_patterns(entry.url_patterns, route)
        else:
            yield route, entry
