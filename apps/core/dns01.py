"""The DNS providers the preview domain's wildcard certificate can be proved
with (ACME DNS-01 by a certbot DNS plugin on the node).

One ``Provider`` entry per plugin: its certbot authenticator, the Debian
package that brings it, and its credentials — each one a Panel setting (a
``PanelSettings`` field and its ``Setting`` line in panel_settings.py) and
the key it has in the plugin's credentials file. Adding a provider is one
entry here plus its credential settings (docs/preview-domain.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credential:
    setting: str  # the Panel setting (and PanelSettings field) holding it
    ini_key: str  # its key in the plugin's credentials file
    required: bool = True
    default: str = ""  # written when the setting is empty (not required ones)


@dataclass(frozen=True)
class Provider:
    name: str  # the value of the dns01_provider setting
    label: str
    authenticator: str  # certbot --authenticator; its options are --<authenticator>-credentials etc.
    package: str  # the Debian package node_provision and the node program install
    credentials: tuple[Credential, ...]

    @property
    def credentials_option(self) -> str:
        return f"--{self.authenticator}-credentials"

    @property
    def propagation_option(self) -> str:
        return f"--{self.authenticator}-propagation-seconds"

    def setting_names(self) -> tuple[str, ...]:
        return tuple(credential.setting for credential in self.credentials)


PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Provider(
            "rfc2136", "RFC 2136 dynamic updates signed with a TSIG key (BIND, Knot, PowerDNS, ...)",
            "dns-rfc2136", "python3-certbot-dns-rfc2136",
            (
                Credential("dns01_rfc2136_server", "dns_rfc2136_server"),
                Credential("dns01_rfc2136_port", "dns_rfc2136_port", required=False, default="53"),
                Credential("dns01_rfc2136_key_name", "dns_rfc2136_name"),
                Credential("dns01_rfc2136_algorithm", "dns_rfc2136_algorithm", required=False,
                           default="HMAC-SHA512"),
                Credential("dns01_rfc2136_secret", "dns_rfc2136_secret"),
            ),
        ),
    )
}
NONE = "none"
CHOICES = (NONE, *PROVIDERS)
