"""Generated passwords the panel stores for services it sets up."""

import secrets
import string

DATABASE_PASSWORD_ALPHABET = string.ascii_letters + string.digits
DATABASE_PASSWORD_LENGTH = 32


def new_database_password() -> str:
    """An environment's MariaDB password: 32 letters and digits (about 190 bits)."""
    return "".join(secrets.choice(DATABASE_PASSWORD_ALPHABET) for _ in range(DATABASE_PASSWORD_LENGTH))
