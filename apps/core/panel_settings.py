"""The panel's settings (the one ``PanelSettings`` row): what each one is,
how it is checked, which are secrets, and the one way to change them.

The API (``GET/PATCH /api/settings``) and the admin's Panel settings page are
both built from ``SETTINGS``: adding a setting is a model field and one
``Setting`` line here (with its check), nothing else. Secrets are
write-only everywhere: stored encrypted, answered only as ``<name>_set``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from django.db import transaction

from apps.core.errors import ApiError
from apps.core.models import PanelSettings

# A DNS name of letters, digits and hyphens: these values end up in Nginx
# configuration and certificate requests, so nothing else may get through.
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
S3_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# A key or secret is one printable word: it goes to restic's environment on the node.
S3_KEY_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
MAX_CA_BUNDLE = 100_000
LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# An e-mail address certbot and the ACME server accept: one word, one @, a dotted domain.
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
                      r"(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$")


class Invalid(ValueError):
    """A refused value; its text is shown to the operator."""


# --- checks: each returns the value as stored ("" clears) or raises Invalid ----------

def hostname(label: str) -> Callable[[str], str]:
    """Strictly a hostname, as a custom domain's (apps/domains/hostnames.py):
    IDNs in their ASCII form; no wildcard, address, port or path."""
    def check(value: str) -> str:
        value = (value or "").strip()
        if not value:
            return value
        from apps.core.errors import ApiError
        from apps.domains.hostnames import normalize

        try:
            value = normalize(value)
        except ApiError as exc:
            why = (exc.details or {}).get("fields", {}).get("hostname", [exc.message])[0]
            raise Invalid(f"{label} must be a DNS name such as panel.example.com: {why}.") from None
        if not HOSTNAME_RE.match(value):
            raise Invalid(f"{label} must be a DNS name such as panel.example.com.")
        return value
    return check


# --- the preview domain and its wildcard certificate (DNS-01; apps/core/dns01.py) -----

def preview_domain(value: str) -> str:
    """A DNS name under which environments get {id8}.<domain>: IDNs to ASCII,
    never a wildcard (the certificate is *.<domain>), an address, port or path."""
    value = (value or "").strip()
    if not value:
        return value
    from apps.core.errors import ApiError
    from apps.domains.hostnames import normalize

    try:
        return normalize(value)
    except ApiError as exc:
        why = exc.details["fields"]["hostname"][0] if exc.details else exc.message
        raise Invalid(f"The preview domain must be a DNS name such as preview.example.com: {why}.") from None


def dns01_provider(value: str) -> str:
    from apps.core import dns01

    value = (value or "").strip().lower()
    if value == dns01.NONE:
        return ""
    if value and value not in dns01.PROVIDERS:
        raise Invalid(f"The DNS-01 provider is one of: {', '.join(dns01.CHOICES)}.")
    return value


def dns_server(value: str) -> str:
    """An IP address or a DNS name (the RFC 2136 server)."""
    value = (value or "").strip().lower().rstrip(".")
    if not value:
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not HOSTNAME_RE.match(value):
        raise Invalid("The DNS server is an IP address or a DNS name such as ns1.example.com.")
    return value


def port(value: str) -> str:
    value = (value or "").strip()
    if value and not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
        raise Invalid("A port is a number from 1 to 65535.")
    return str(int(value)) if value else value


TSIG_KEY_NAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*$")
TSIG_ALGORITHMS = ("HMAC-MD5", "HMAC-SHA1", "HMAC-SHA224", "HMAC-SHA256", "HMAC-SHA384", "HMAC-SHA512")
BASE64_RE = re.compile(r"^[A-Za-z0-9+/]{4,}={0,2}$")


def tsig_key_name(value: str) -> str:
    value = (value or "").strip().rstrip(".")
    if value and not TSIG_KEY_NAME_RE.match(value):
        raise Invalid("The TSIG key name is a DNS name such as certbot-key or acme.example.com.")
    return value


def tsig_algorithm(value: str) -> str:
    # certbot's plugin reads the name in upper case only (lower case falls back to HMAC-MD5).
    value = (value or "").strip().upper().rstrip(".")
    if value and value not in TSIG_ALGORITHMS:
        raise Invalid(f"The TSIG algorithm is one of {', '.join(TSIG_ALGORITHMS)}.")
    return value


def tsig_secret(value: str) -> str:
    value = (value or "").strip()
    if value and not (len(value) <= 1024 and BASE64_RE.match(value) and len(value) % 4 == 0):
        raise Invalid("The TSIG secret is the key's base64 text (as in the DNS server's key file).")
    return value


def propagation_seconds(value: str) -> str:
    value = (value or "").strip()
    if value and not (value.isascii() and value.isdigit() and int(value) <= 3600):
        raise Invalid("The propagation wait is a number of seconds from 0 to 3600.")
    return str(int(value)) if value else value


def preview_problems(values: dict) -> dict[str, list[str]]:
    """The preview settings taken together (what is stored, the change, the
    environment variables that win): a preview domain needs a DNS-01
    provider, and a provider all its required credentials."""
    from apps.core import dns01

    problems: dict[str, list[str]] = {}
    provider = dns01.PROVIDERS.get(values.get("dns01_provider") or "")
    if values.get("preview_domain") and provider is None:
        problems["dns01_provider"] = ["A preview domain needs a DNS-01 provider for its wildcard certificate "
                                      f"({', '.join(dns01.PROVIDERS)})."]
    if provider is not None:
        for credential in provider.credentials:
            if credential.required and not values.get(credential.setting):
                problems[credential.setting] = [f"The {provider.name} provider needs this."]
    return problems


def s3_endpoint(value: str) -> str:
    value = (value or "").strip().rstrip("/")
    if not value:
        return value
    parts = urlsplit(value)
    if (parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password
            or parts.query or parts.fragment or parts.path or any(char.isspace() for char in value)):
        raise Invalid("The endpoint is a URL such as https://s3.eu-central-1.amazonaws.com "
                      "(scheme, host and port only; the keys go in their own fields).")
    return value


def s3_region(value: str) -> str:
    value = (value or "").strip().lower()
    if value and not S3_REGION_RE.match(value):
        raise Invalid("The region is a name such as eu-central-1.")
    return value


def s3_bucket(value: str) -> str:
    value = (value or "").strip()
    if value and not S3_BUCKET_RE.match(value):
        raise Invalid("A bucket name has 3 to 63 lower-case letters, digits, dots and hyphens.")
    return value


def s3_prefix(value: str) -> str:
    value = (value or "").strip().strip("/")
    if value and (not S3_PREFIX_RE.match(value) or ".." in value.split("/") or "." in value.split("/")):
        raise Invalid("The prefix is a folder path such as pressluft/backups (letters, digits, . _ - and /).")
    return value


def s3_key(value: str) -> str:
    value = (value or "").strip()
    if value and not S3_KEY_RE.match(value):
        raise Invalid("A key is one word of printable characters.")
    return value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def acme_directory_url(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return value
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError:
        parts = None
    if (parts is None or not parts.hostname or parts.username or parts.password or parts.fragment
            or any(char.isspace() or not char.isprintable() for char in value)
            or not (parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname)))):
        raise Invalid(f"The ACME directory is an https URL such as {LETS_ENCRYPT_STAGING} "
                      "(http only for a server on this machine's loopback).")
    return value


def acme_ca_bundle(value: str) -> str:
    """PEM text of one or more CA certificates; certbot on the nodes gets it as a file."""
    value = (value or "").strip()
    if not value:
        return value
    from cryptography import x509

    problem = "The CA bundle is the PEM text of one or more certificates (-----BEGIN CERTIFICATE----- ...)."
    if len(value) > MAX_CA_BUNDLE or not value.isascii():
        raise Invalid(problem)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----", value)
    if not blocks or re.sub(r"\s", "", "".join(blocks)) != re.sub(r"\s", "", value):
        raise Invalid(problem)  # only certificates: no keys, no other text
    try:
        for block in blocks:
            x509.load_pem_x509_certificate(block.encode())
    except ValueError:
        raise Invalid(problem + " One of them cannot be read.") from None
    return "\n".join(block.replace("\r", "") for block in blocks) + "\n"


def email(value: str) -> str:
    value = (value or "").strip()
    if value and not EMAIL_RE.match(value):
        raise Invalid("The e-mail is an address such as hostmaster@example.com.")
    return value


def resolver_address(item: str) -> tuple[str, int]:
    """ "address", "address:port" or "[v6]:port" → (address, port); ValueError when not."""
    address, port = item, 53
    if item.startswith("["):
        address, _, rest = item[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(item)
            port = int(rest[1:])
    elif item.count(":") == 1:
        address, port_text = item.split(":")
        port = int(port_text)
    if "%" in address:  # no IPv6 zone
        raise ValueError(item)
    address = str(ipaddress.ip_address(address))
    if not 0 < port < 65536:
        raise ValueError(item)
    return address, port


def dns_resolvers(value: str) -> str:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    for item in items:
        try:
            resolver_address(item)
        except ValueError:
            raise Invalid(f"{item[:60]!r} is not a resolver: give IP addresses separated by commas "
                          "(address, address:port or [v6]:port).") from None
    if len(items) > 10:
        raise Invalid("At most 10 resolvers.")
    return ",".join(items)


@dataclass(frozen=True)
class Setting:
    name: str  # the PanelSettings field
    check: Callable[[str], str]
    help: str
    secret: bool = False
    max_length: int = 500


SETTINGS: tuple[Setting, ...] = (
    Setting("control_plane_domain", hostname("The control plane domain"),
            "The panel's own host name; the panel answers requests for it.", max_length=253),
    # The preview domain and its wildcard certificate (docs/preview-domain.md); PRESSLUFT_<NAME> wins.
    Setting("preview_domain", preview_domain,
            "Domain for new environments' preview URLs (https://{id8}.<domain>, one wildcard certificate "
            "*.<domain> by DNS-01); empty: http://{id8}.<node address>.sslip.io.", max_length=253),
    Setting("dns01_provider", dns01_provider, "How the wildcard certificate is proved (certbot DNS plugin): "
            "none or rfc2136.", max_length=64),
    Setting("dns01_propagation_seconds", propagation_seconds, "Seconds certbot waits after the DNS update "
            "before the ACME server checks; empty: the plugin's default.", max_length=4),
    Setting("dns01_rfc2136_server", dns_server, "RFC 2136: the authoritative DNS server taking the updates "
            "(address or name).", max_length=253),
    Setting("dns01_rfc2136_port", port, "RFC 2136: its port; empty: 53.", max_length=5),
    Setting("dns01_rfc2136_key_name", tsig_key_name, "RFC 2136: the TSIG key's name.", max_length=253),
    Setting("dns01_rfc2136_algorithm", tsig_algorithm, "RFC 2136: the TSIG algorithm; empty: HMAC-SHA512.",
            max_length=16),
    Setting("dns01_rfc2136_secret", tsig_secret, "RFC 2136: the TSIG key's secret (base64).", secret=True,
            max_length=1024),
    Setting("backup_s3_endpoint", s3_endpoint, "S3-compatible endpoint of the backup storage."),
    Setting("backup_s3_region", s3_region, "Its region.", max_length=64),
    Setting("backup_s3_bucket", s3_bucket, "Its bucket.", max_length=63),
    Setting("backup_s3_prefix", s3_prefix, "Folder in the bucket; each site's repository is "
            "<prefix>/sites/<site id>.", max_length=200),
    Setting("backup_s3_access_key_id", s3_key, "Access key ID of the backup storage.", secret=True, max_length=256),
    Setting("backup_s3_secret_access_key", s3_key, "Secret access key of the backup storage.", secret=True,
            max_length=256),
    Setting("acme_directory_url", acme_directory_url, "ACME server certbot asks for custom domains' certificates; "
            f"empty: Let's Encrypt production. Let's Encrypt staging: {LETS_ENCRYPT_STAGING}. "
            "PRESSLUFT_ACME_DIRECTORY_URL wins."),
    Setting("acme_ca_bundle", acme_ca_bundle, "PEM text of the CA certificate(s) the ACME server's HTTPS is "
            "checked with (a private or test ACME server); empty: the system's CAs. PRESSLUFT_ACME_CA_BUNDLE "
            "(a PEM file on the panel) wins.", max_length=MAX_CA_BUNDLE),
    Setting("acme_email", email, "Account e-mail given to the ACME server (expiry notices). PRESSLUFT_ACME_EMAIL "
            "wins.", max_length=254),
    Setting("dns_resolvers", dns_resolvers, "Comma-separated resolvers (address, address:port or [v6]:port) "
            "a new domain's A/AAAA records are checked against; empty: the panel's own. "
            "PRESSLUFT_DNS_RESOLVERS wins."),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
PREVIEW_SETTINGS = {setting.name for setting in SETTINGS
                    if setting.name == "preview_domain" or setting.name.startswith("dns01_")}


def preview_from_environment() -> dict[str, str]:
    """PRESSLUFT_PREVIEW_DOMAIN and PRESSLUFT_DNS01_*: each wins over the stored setting of its name."""
    from django.conf import settings

    return {name: value for name, value in settings.PREVIEW_FROM_ENVIRONMENT.items()
            if name in PREVIEW_SETTINGS and value}


def current() -> dict:
    """What the API shows: every plain value, and for each secret only whether it is set."""
    row = PanelSettings.load()
    shown = {}
    for setting in SETTINGS:
        value = getattr(row, setting.name) or ""
        if setting.secret:
            shown[f"{setting.name}_set"] = bool(value)
        else:
            shown[setting.name] = value
    from apps.backups import storage

    shown["backups_enabled"] = storage.configured_storage() is not None
    from apps.domains import panel_https

    shown["control_plane_https"] = panel_https.status()
    shown["updated_at"] = row.updated_at
    return shown


def clean(changes: dict) -> dict:
    """Each given value checked; ApiError bad_request naming every refused field."""
    cleaned, problems = {}, {}
    for name, value in changes.items():
        setting = BY_NAME.get(name)
        if setting is None:
            problems[name] = ["Unknown setting."]
            continue
        try:
            cleaned[name] = setting.check("" if value is None else str(value))
        except Invalid as exc:
            problems[name] = [str(exc)]
    if problems:
        raise ApiError("bad_request", "Some settings were refused.", {"fields": problems})
    return cleaned


def update(changes: dict) -> list[str]:
    """Check and store ``changes`` (setting name -> value; "" clears). Returns
    the names of the settings that changed (never their values: the audit
    entry records the names only)."""
    cleaned = clean(changes)
    with transaction.atomic():
        PanelSettings.load()
        row = PanelSettings.objects.select_for_update().get(pk=1)
        changed = [name for name, value in cleaned.items() if (getattr(row, name) or "") != value]
        together = {setting.name: getattr(row, setting.name) or "" for setting in SETTINGS}
        together.update(cleaned)
        together.update(preview_from_environment())
        problems = preview_problems(together)
        if problems and PREVIEW_SETTINGS & set(cleaned):
            raise ApiError("bad_request", "Some settings were refused.", {"fields": problems})
        for name in changed:
            setattr(row, name, cleaned[name])
        if changed:
            row.save()
        if PREVIEW_SETTINGS & set(changed):
            from apps.domains import preview

            # The wildcard certificate (and the credentials renewals use) on every node, now.
            preview.settings_changed()
    if "control_plane_domain" in changed:
        from pressluft.allowed_hosts import control_plane_domain

        # The panel answers to it (ALLOWED_HOSTS): this process at once, the others within seconds.
        control_plane_domain.forget()
        # ... and its machine's Nginx serves it there over HTTPS (docs/panel-https.md).
        from apps.domains import services as domain_services

        domain_services.control_plane_domain_changed()
    return changed
