"""The ACME server, its CA bundle, the account e-mail and the DNS resolvers
custom domains use: the admin's Panel settings (/api/settings), where an
environment variable (PRESSLUFT_ACME_*, PRESSLUFT_DNS_RESOLVERS) wins field by
field, as for the backup storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.core.models import PanelSettings
from apps.core.panel_settings import LETS_ENCRYPT_PRODUCTION, resolver_address
from apps.jobs.errors import JobError

FIELDS = ("directory_url", "ca_bundle", "email", "dns_resolvers")
PANEL_FIELDS = {"directory_url": "acme_directory_url", "ca_bundle": "acme_ca_bundle", "email": "acme_email",
                "dns_resolvers": "dns_resolvers"}
ENVIRONMENT_VARIABLES = {"directory_url": "PRESSLUFT_ACME_DIRECTORY_URL", "ca_bundle": "PRESSLUFT_ACME_CA_BUNDLE",
                         "email": "PRESSLUFT_ACME_EMAIL", "dns_resolvers": "PRESSLUFT_DNS_RESOLVERS"}


@dataclass(frozen=True)
class AcmeConfig:
    directory_url: str
    ca_bundle: str  # PEM text; "" = the system's CAs
    email: str
    dns_resolvers: tuple[tuple[str, int], ...]  # (address, port); () = the panel's own
    from_environment: tuple[str, ...]  # the fields an environment variable gave


def from_environment() -> dict[str, str]:
    return {field: value.strip() for field, value in settings.ACME_FROM_ENVIRONMENT.items() if value.strip()}


def effective(panel: PanelSettings | None = None) -> AcmeConfig:
    panel = panel or PanelSettings.load()
    stored = {field: (getattr(panel, PANEL_FIELDS[field]) or "").strip() for field in FIELDS}
    environment = from_environment()
    values = {**stored, **environment}
    bundle = values["ca_bundle"]
    if "ca_bundle" in environment:
        # The variable names a PEM file on the panel.
        try:
            bundle = Path(bundle).read_text()
        except OSError as exc:
            raise JobError("acme_settings_invalid", f"PRESSLUFT_ACME_CA_BUNDLE={bundle} cannot be read: {exc}.") from None
    if bundle and not bundle.endswith("\n"):
        bundle += "\n"
    resolvers = []
    for item in values["dns_resolvers"].split(","):
        if item.strip():
            try:
                resolvers.append(resolver_address(item.strip()))
            except ValueError:
                raise JobError("acme_settings_invalid", f"PRESSLUFT_DNS_RESOLVERS has {item.strip()!r}, which is not an "
                                                 "IP address (address, address:port or [v6]:port).") from None
    return AcmeConfig(directory_url=values["directory_url"] or LETS_ENCRYPT_PRODUCTION, ca_bundle=bundle,
                      email=values["email"], dns_resolvers=tuple(resolvers),
                      from_environment=tuple(sorted(environment)))
