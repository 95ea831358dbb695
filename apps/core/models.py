import uuid

from django.db import models

from apps.core.fields import EncryptedTextField


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class VersionedModel(TimestampedModel):
    """A mutable row with optimistic concurrency: every change bumps ``state_version``.

    Change such rows only through ``apps.core.state.change_state`` (called by the
    services), which refuses a change made against a stale version.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state_version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        abstract = True


class PanelSettings(models.Model):
    """Operator configuration of this installation; exactly one row (pk=1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    control_plane_domain = models.CharField(max_length=253, blank=True, default="")
    preview_domain = models.CharField(
        max_length=253,
        blank=True,
        default="",
        help_text="Wildcard domain for preview URLs; empty means sslip.io from the node's IP.",
    )
    # The preview domain's wildcard certificate by DNS-01 (apps/core/dns01.py: the
    # providers and which of these fields each one uses).
    dns01_provider = models.CharField("DNS-01 provider", max_length=64, blank=True, default="")
    dns01_propagation_seconds = models.CharField("DNS propagation wait (s)", max_length=4, blank=True, default="")
    dns01_rfc2136_server = models.CharField("RFC 2136 DNS server", max_length=253, blank=True, default="")
    dns01_rfc2136_port = models.CharField("RFC 2136 port", max_length=5, blank=True, default="")
    dns01_rfc2136_key_name = models.CharField("TSIG key name", max_length=253, blank=True, default="")
    dns01_rfc2136_algorithm = models.CharField("TSIG algorithm", max_length=16, blank=True, default="")
    dns01_rfc2136_secret = EncryptedTextField(blank=True, default="")
    # The installation's SSH key pair: nodes authorize the public half.
    ssh_private_key = EncryptedTextField(blank=True, default="", editable=False)
    ssh_public_key = models.TextField(blank=True, default="", editable=False)
    # Backup storage: S3-compatible object storage (apps/backups/storage.py; each
    # value can also come from a PRESSLUFT_BACKUP_S3_* environment variable, which wins).
    backup_s3_endpoint = models.CharField(
        "S3 endpoint", max_length=500, blank=True, default="",
        help_text="e.g. https://s3.eu-central-1.amazonaws.com or https://objects.example.com:9000",
    )
    backup_s3_region = models.CharField("S3 region", max_length=64, blank=True, default="")
    backup_s3_bucket = models.CharField("S3 bucket", max_length=63, blank=True, default="")
    backup_s3_prefix = models.CharField(
        "path prefix", max_length=200, blank=True, default="",
        help_text="Folder in the bucket under which each site gets its repository (<prefix>/sites/<site id>).",
    )
    backup_s3_access_key_id = EncryptedTextField(blank=True, default="")
    backup_s3_secret_access_key = EncryptedTextField(blank=True, default="")
    # Custom domains' certificates and DNS checks (apps/domains/acme_config.py; each
    # value can also come from a PRESSLUFT_ACME_* / PRESSLUFT_DNS_RESOLVERS variable, which wins).
    acme_directory_url = models.CharField(
        "ACME directory URL", max_length=500, blank=True, default="",
        help_text="Empty: Let's Encrypt production. Let's Encrypt staging (untrusted test certificates): "
                  "https://acme-staging-v02.api.letsencrypt.org/directory",
    )
    acme_ca_bundle = models.TextField(
        "ACME CA bundle", blank=True, default="",
        help_text="PEM text of the CA certificate(s) the ACME server's own HTTPS certificate is checked with "
                  "(a private or test ACME server); empty: the system's CAs.",
    )
    acme_email = models.CharField("ACME account e-mail", max_length=254, blank=True, default="")
    dns_resolvers = models.CharField(
        "DNS resolvers", max_length=500, blank=True, default="",
        help_text="Comma-separated IP addresses (address, address:port or [v6]:port) a new domain's records are "
                  "checked against; empty: the panel machine's own resolvers.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "panel settings"
        verbose_name_plural = "panel settings"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="panel_settings_singleton")]

    def __str__(self):
        return "Panel settings"

    @classmethod
    def load(cls) -> "PanelSettings":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj
