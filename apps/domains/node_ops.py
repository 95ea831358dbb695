"""What the panel asks a node to do for an environment's domains: the
rendered server block (before and after issuance), the ACME settings, the
URL change; one run of ``domain_sync.py``."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.template import Context, Engine

from apps.domains import acme_config
from apps.environments import naming
from apps.environments import node_ops as environment_node_ops
from apps.environments.node_templates import render as render_environment_template
from apps.nodes.remote_exec import run_program

TEMPLATE_DIR = Path(__file__).resolve().parent / "node_config"
LIVE = "/etc/letsencrypt/live"
ACME_WEBROOT = "/var/lib/pressluft/acme"
SYNC_TIMEOUT = 900


@dataclass(frozen=True)
class DomainState:
    """One hostname as the server block should serve it."""

    hostname: str
    certified: bool
    is_primary: bool


@functools.cache
def _engine() -> Engine:
    return Engine(dirs=[str(TEMPLATE_DIR)], autoescape=False)


def vhost_path(environment) -> str:
    return naming.domains_vhost_path(environment)


def canonical_url(environment, domains: list[DomainState]) -> str:
    primary = next((domain for domain in domains if domain.is_primary), None)
    return f"https://{primary.hostname}" if primary else environment.preview_url


def render_vhost(environment, domains: list[DomainState]) -> str:
    """The domains' server block ("" when the environment has none)."""
    if not domains:
        return ""
    url = canonical_url(environment, domains)
    listen = f"{settings.NODE_LISTEN_ADDRESS}:" if settings.NODE_LISTEN_ADDRESS else ""
    primary_block = ""
    primary = next((domain for domain in domains if domain.is_primary and domain.certified), None)
    if primary is not None:
        context = environment_node_ops.config_context(environment)
        context.update(hostnames=[primary.hostname], url=url,
                       ssl_certificate=f"{LIVE}/{primary.hostname}/fullchain.pem",
                       ssl_certificate_key=f"{LIVE}/{primary.hostname}/privkey.pem", http_redirect=False)
        primary_block = render_environment_template("nginx-vhost.conf.tmpl", context)
    rows = [{"hostname": domain.hostname, "is_primary": domain.is_primary, "http_target": url,
             "certificate": f"{LIVE}/{domain.hostname}/fullchain.pem" if domain.certified else "",
             "certificate_key": f"{LIVE}/{domain.hostname}/privkey.pem"} for domain in domains]
    context = {"env": environment, "domains": rows, "listen": listen, "acme_webroot": ACME_WEBROOT,
               "canonical_url": url, "primary_block": primary_block, "marker": secrets.token_hex(8)}
    return _engine().get_template("nginx-domains.conf.tmpl").render(Context(context, autoescape=False))


def render_wp_config(environment, url: str) -> str:
    context = environment_node_ops.config_context(environment)
    context["url"] = url
    return render_environment_template("wp-config.php.tmpl", context)


def acme_params() -> dict:
    config = acme_config.effective()
    return {"directory": config.directory_url, "email": config.email, "ca_bundle": config.ca_bundle}


def sync(environment, *, before: list[DomainState], after: list[DomainState], issue: list[str],
         delete_certificates: list[str], ctx=None) -> dict:
    """Run domain_sync.py: ``before`` is served while ``issue`` get their
    certificates, ``after`` once they have them."""
    old_url, new_url = canonical_url(environment, before), canonical_url(environment, after)
    hosts = sorted({domain.hostname for domain in before + after} | {urlsplit(environment.preview_url).hostname})
    params = {
        "system_name": naming.system_name(environment),
        "root": naming.root(environment),
        "url": new_url,
        "vhost_path": vhost_path(environment),
        "vhost_before_issue": render_vhost(environment, before) if issue else None,
        "vhost": render_vhost(environment, after),
        "issue": issue,
        "acme": acme_params(),
        "listen_address": settings.NODE_LISTEN_ADDRESS,
        "wp_config": render_wp_config(environment, new_url) if new_url != old_url else None,
        "rewrite": ({"old_url": old_url, "new_url": new_url, "db_password": environment.db_password}
                    if new_url != old_url else None),
        "purge_hostnames": hosts,
        "redis_key_prefix": naming.redis_key_prefix(environment),
        "delete_certificates": delete_certificates,
    }
    return run_program(environment.node, "domain_sync.py", params, ctx=ctx, timeout=SYNC_TIMEOUT)
