from django.db import models


class TlsStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    DISABLED = "disabled", "Disabled"


class TlsIssuer(models.TextChoices):
    LETSENCRYPT = "letsencrypt", "Let's Encrypt"
