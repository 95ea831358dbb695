"""Where backups go: S3-compatible object storage, one restic repository per site.

The storage is configured in the admin's Panel settings or by environment
variables (``PRESSLUFT_BACKUP_S3_*``, which win field by field). Without an
endpoint, a bucket and both keys, backups are off: they are refused rather
than kept on the node they are meant to protect.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core.models import PanelSettings

FIELDS = ("endpoint", "region", "bucket", "prefix", "access_key_id", "secret_access_key")
SECRET_FIELDS = ("access_key_id", "secret_access_key")
REQUIRED_FIELDS = ("endpoint", "bucket", "access_key_id", "secret_access_key")
ENVIRONMENT_VARIABLES = {field: f"PRESSLUFT_BACKUP_S3_{field.upper()}" for field in FIELDS}

NOT_CONFIGURED_HINT = (
    "Backups are off until S3-compatible storage is configured: set the endpoint, bucket, access key and "
    "secret in the admin (Panel settings, section Backup storage) or with the PRESSLUFT_BACKUP_S3_* "
    "environment variables (docs/configuration.md)."
)


@dataclass(frozen=True)
class BackupStorage:
    endpoint: str
    region: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str

    def repository_key(self, site_id) -> str:
        """The repository's folder inside the bucket."""
        return "/".join(part for part in (self.prefix.strip("/"), "sites", str(site_id)) if part)

    def repository_location(self, site_id) -> str:
        """What the Backup rows show as their storage path (no credentials)."""
        return f"s3://{self.bucket}/{self.repository_key(site_id)}"

    def repository_url(self, site_id) -> str:
        """The repository as restic names it."""
        return f"s3:{self.endpoint.rstrip('/')}/{self.bucket}/{self.repository_key(site_id)}"


def stored_values(panel: PanelSettings | None = None) -> dict[str, str]:
    panel = panel or PanelSettings.load()
    return {field: (getattr(panel, f"backup_s3_{field}") or "").strip() for field in FIELDS}


def from_environment() -> dict[str, str]:
    return {field: value.strip() for field, value in settings.BACKUP_STORAGE_FROM_ENVIRONMENT.items()}


def effective_values(panel: PanelSettings | None = None) -> dict[str, str]:
    return {**stored_values(panel), **from_environment()}


def missing_fields(values: dict[str, str]) -> list[str]:
    return [field for field in REQUIRED_FIELDS if not values.get(field)]


def configured_storage() -> BackupStorage | None:
    """The storage backups go to, or None when backups are off."""
    values = effective_values()
    if missing_fields(values):
        return None
    return BackupStorage(**values)


def repository_password(site) -> str:
    """The site's restic repository password, generated on first use and kept
    encrypted in the panel (it outlives the site: its backups may)."""
    from apps.backups.models import BackupRepository

    found = BackupRepository.objects.filter(site_id=site.pk).first()
    if found is not None:
        return found.password
    try:
        with transaction.atomic():
            return BackupRepository.objects.create(
                site_id=site.pk, site_slug=site.slug, password=secrets.token_urlsafe(32)
            ).password
    except IntegrityError:
        # Another run made it first: use that one.
        return BackupRepository.objects.get(site_id=site.pk).password
