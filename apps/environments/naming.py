"""Names and places of an environment on its node: derived from its id, and
the names of its release directories."""

from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django.utils import timezone



def system_name(environment) -> str:
    """Linux user, PHP-FPM pool, database and database user: ``pl`` + 12 hex digits."""
    return f"pl{environment.id.hex[:12]}"


def root(environment) -> str:
    return f"{settings.NODE_SITES_ROOT}/{environment.id}"


def redis_key_prefix(environment) -> str:
    """Every Redis key of the environment starts with this; its Redis user reaches no other."""
    return f"pressluft_{environment.id}:"


def pool_path(environment) -> str:
    return f"/etc/php/8.2/fpm/pool.d/{system_name(environment)}.conf"


def vhost_path(environment) -> str:
    return f"/etc/nginx/sites-enabled/pressluft-{system_name(environment)}.conf"


def domains_vhost_path(environment) -> str:
    """The server block of the environment's custom domains (written by the domains jobs)."""
    return f"/etc/nginx/sites-enabled/pressluft-{system_name(environment)}-domains.conf"


def preview_url(environment, node) -> str:
    """SPEC: https://{8 hex}.{preview_domain} with a preview domain, else sslip.io from the node's IP."""
    from apps.core.errors import ApiError
    from apps.domains import preview
    from apps.jobs.errors import JobError

    short = environment.id.hex[:8]
    try:
        preview_domain = preview.preview_domain()  # the Panel setting, or PRESSLUFT_PREVIEW_DOMAIN
    except JobError as exc:
        raise ApiError("conflict", f"No preview URL can be given: {exc.message}") from None
    if preview_domain:
        return f"https://{short}.{preview_domain}"
    return f"http://{short}.{node.public_ipv4.replace('.', '-')}.sslip.io"


def canonical_url(environment) -> str:
    """The site's own URL (WordPress's home and siteurl): its primary domain
    over HTTPS once it has one (a domain becomes primary with its
    certificate), else the preview URL."""
    primary = environment.domains.filter(is_primary=True).values_list("hostname", flat=True).first()
    return f"https://{primary}" if primary else environment.preview_url


# Release directories are named by the UTC time they were asked for, to the
# microsecond, so two deploys within a second get different names. The node
# programs also accept names without the microseconds (RELEASE in
# remote/env_deploy.py), which older sites and clones have.
RELEASE_NAME_FORMAT = "%Y%m%dT%H%M%S%fZ"


def new_release_name(at: datetime | None = None) -> str:
    """The name of a release directory asked for ``at`` (default: now)."""
    return (at or timezone.now()).astimezone(dt_timezone.utc).strftime(RELEASE_NAME_FORMAT)
