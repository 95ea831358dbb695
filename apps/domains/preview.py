"""The preview domain and its one wildcard certificate (DNS-01).

With a preview domain, new environments are reached at
``https://{id8}.<preview domain>`` and every one of them on a node serves the
same certificate, ``*.<preview domain>``, which certbot on that node gets
with the DNS plugin of the configured provider (apps/core/dns01.py): node
program ``remote/preview_cert.py``, run by the node-scope job
``preview_cert_issue`` (queued for every active node when the settings
change) and by the jobs that set up a new environment, before its server
block needs the certificate. Renewal is certbot's, by the node's renewal
schedule (remote/certificates.py), with the credentials file this writes.

The settings are the Panel settings ``preview_domain``, ``dns01_provider``,
``dns01_propagation_seconds`` and the provider's credentials;
``PRESSLUFT_<NAME>`` environment variables win field by field."""

from __future__ import annotations

from dataclasses import dataclass

from apps.core import dns01, panel_settings
from apps.core.models import PanelSettings
from apps.domains import acme_config
from apps.jobs.errors import JobError

LIVE = "/etc/letsencrypt/live"
TIMEOUT = 15 * 60


@dataclass(frozen=True)
class PreviewConfig:
    domain: str  # "" = no preview domain (sslip.io preview URLs)
    provider: dns01.Provider | None
    credentials: dict  # the plugin's credentials file: key -> value
    propagation_seconds: int | None
    from_environment: tuple[str, ...]  # the settings an environment variable gave


def _values(panel: PanelSettings) -> tuple[dict, dict]:
    stored = {name: getattr(panel, name) or "" for name in panel_settings.PREVIEW_SETTINGS}
    return stored, panel_settings.preview_from_environment()


def effective(panel: PanelSettings | None = None) -> PreviewConfig:
    """What the jobs use; JobError ``preview_settings_invalid`` when an
    environment variable cannot be used or the settings are incomplete."""
    stored, environment = _values(panel or PanelSettings.load())
    values = dict(stored)
    for name, value in environment.items():
        try:
            values[name] = panel_settings.BY_NAME[name].check(value)
        except panel_settings.Invalid as exc:
            raise JobError("preview_settings_invalid", f"PRESSLUFT_{name.upper()}: {exc}") from None
    problems = panel_settings.preview_problems(values)
    if problems:
        raise JobError("preview_settings_invalid", "The preview domain's settings are incomplete: " + "; ".join(
            f"{name}: {' '.join(texts)}" for name, texts in sorted(problems.items())))
    provider = dns01.PROVIDERS.get(values["dns01_provider"])
    credentials = {}
    if provider is not None:
        for credential in provider.credentials:
            value = values.get(credential.setting) or credential.default
            if value:
                credentials[credential.ini_key] = value
    seconds = values.get("dns01_propagation_seconds")
    return PreviewConfig(domain=values["preview_domain"], provider=provider, credentials=credentials,
                         propagation_seconds=int(seconds) if seconds else None,
                         from_environment=tuple(sorted(environment)))


def preview_domain() -> str:
    """The preview domain new environments get their URL under ("" = none)."""
    return effective().domain


def certificate_name(domain: str) -> str:
    """certbot's name for the wildcard certificate of ``domain``. No custom
    domain's certificate (named after its hostname) can be called so: a
    hostname has no underscore."""
    return f"_wildcard.{domain}"


def certificate_paths(domain: str) -> tuple[str, str]:
    name = certificate_name(domain)
    return f"{LIVE}/{name}/fullchain.pem", f"{LIVE}/{name}/privkey.pem"


def domain_of(host: str) -> str:
    """The preview domain of a preview host ({id8}.<domain>)."""
    return host.split(".", 1)[1]


def params(domain: str | None = None) -> dict:
    """What preview_cert.py gets: the domain, the ACME settings, the plugin and its credentials (data only)."""
    config = effective()
    domain = domain or config.domain
    if not domain or config.provider is None:
        raise JobError("preview_settings_invalid", "No preview domain with a DNS-01 provider is configured.")
    acme = acme_config.effective()
    return {
        "domain": domain,
        "certificate_name": certificate_name(domain),
        "acme": {"directory": acme.directory_url, "email": acme.email, "ca_bundle": acme.ca_bundle},
        "provider": {"name": config.provider.name, "authenticator": config.provider.authenticator,
                     "package": config.provider.package,
                     "credentials_option": config.provider.credentials_option,
                     "propagation_option": config.provider.propagation_option},
        "credentials": config.credentials,
        "propagation_seconds": config.propagation_seconds,
    }


def ensure_certificate(node, domain: str, *, ctx=None) -> dict:
    """The wildcard certificate of ``domain`` on ``node``: issued unless it is
    there already (and the credentials file renewals use brought up to date)."""
    from apps.nodes.remote_exec import run_program

    return run_program(node, "preview_cert.py", dict(params(domain), force=False), ctx=ctx, timeout=TIMEOUT)


def ensure_for_environment(environment, ctx) -> None:
    """Before a new environment's server block: its preview host's certificate on its node."""
    from urllib.parse import urlsplit

    parts = urlsplit(environment.preview_url)
    if parts.scheme != "https":
        return
    domain = domain_of(parts.hostname)
    with ctx.step(f"wildcard certificate *.{domain} on {environment.node.name}"):
        result = ensure_certificate(environment.node, domain, ctx=ctx)
    ctx.log(f"*.{domain}: {'issued' if result.get('issued') else 'present'}, valid until {result.get('not_after')}")


def settings_changed() -> list:
    """Called by panel_settings.update (inside its transaction) when a preview
    setting changed: the certificate and the credentials renewals use, on
    every active node."""
    from apps.jobs.services import enqueue_job
    from apps.nodes.choices import NodeStatus
    from apps.nodes.models import Node

    try:
        config = effective()
    except JobError:
        return []
    if not config.domain or config.provider is None:
        return []
    return [enqueue_job("preview_cert_issue", node=node, payload={"domain": config.domain},
                        dedup_key=f"preview_cert_issue:{node.pk}")
            for node in Node.objects.filter(status=NodeStatus.ACTIVE).order_by("name")]
