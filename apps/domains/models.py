from django.db import models

from apps.core.models import VersionedModel
from apps.domains.choices import TlsIssuer, TlsStatus


class Domain(VersionedModel):
    """A hostname attached to an environment; one per environment is primary,
    the others redirect to it."""

    environment = models.ForeignKey(
        "environments.Environment", on_delete=models.CASCADE, related_name="domains"
    )
    hostname = models.CharField(max_length=253, unique=True)
    tls_status = models.CharField(max_length=10, choices=TlsStatus.choices, default=TlsStatus.PENDING)
    tls_issuer = models.CharField(max_length=20, choices=TlsIssuer.choices, default=TlsIssuer.LETSENCRYPT)
    is_primary = models.BooleanField(default=False)
    tls_expires_at = models.DateTimeField(null=True, blank=True, help_text="Expiry of the certificate on the node.")
    tls_error = models.TextField(blank=True, default="", help_text="Why the last issuance or renewal failed.")

    class Meta:
        ordering = ["hostname"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"], condition=models.Q(is_primary=True), name="one_primary_domain_per_environment"
            ),
            models.CheckConstraint(
                condition=models.Q(tls_status__in=TlsStatus.values), name="domain_tls_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(hostname=models.functions.Lower("hostname")), name="domain_hostname_lowercase"
            ),
        ]

    def __str__(self):
        return self.hostname
