"""The installation's SSH key pair (Ed25519), created on first use.

The private key is stored encrypted in PanelSettings (the encryption key is a
file outside the database); only the public half is ever shown.
"""

import io

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction

from apps.core.models import PanelSettings

KEY_COMMENT = "pressluft-panel"


def new_key_pair(comment: str) -> tuple[str, str]:
    """A fresh Ed25519 pair: (private key in OpenSSH PEM, public key line with ``comment``)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


def _generate() -> tuple[str, str]:
    return new_key_pair(KEY_COMMENT)


def ensure_key_pair() -> PanelSettings:
    settings_row = PanelSettings.load()
    if settings_row.ssh_private_key:
        return settings_row
    with transaction.atomic():
        settings_row = PanelSettings.objects.select_for_update().get(pk=1)
        if not settings_row.ssh_private_key:
            settings_row.ssh_private_key, settings_row.ssh_public_key = _generate()
            settings_row.save(update_fields=["ssh_private_key", "ssh_public_key", "updated_at"])
    return settings_row


def public_key() -> str:
    return ensure_key_pair().ssh_public_key


def private_key() -> paramiko.PKey:
    return paramiko.Ed25519Key(file_obj=io.StringIO(ensure_key_pair().ssh_private_key))
