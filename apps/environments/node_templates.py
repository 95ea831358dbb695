"""Rendering node configuration files (wp-config.php, PHP-FPM pool, Nginx
server block) from the templates in ``node_config/``. The panel renders;
the node program installs the result atomically and validates it."""

import functools
import hashlib
import hmac
from pathlib import Path

from django import template
from django.template import Context, Engine

register = template.Library()
TEMPLATE_DIR = Path(__file__).resolve().parent / "node_config"

WP_SALT_NAMES = (
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
)


@register.filter(name="php")
def php_single_quoted(value) -> str:
    """Escape for a PHP single-quoted string literal."""
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


@functools.cache
def _engine() -> Engine:
    return Engine(dirs=[str(TEMPLATE_DIR)], autoescape=False, builtins=["apps.environments.node_templates"])


def render(name: str, context: dict) -> str:
    return _engine().get_template(name).render(Context(context, autoescape=False))


def wordpress_salts(environment) -> list[tuple[str, str]]:
    """Salts unique to the environment and stable across re-renders (so logins
    survive a config rewrite): derived from its secret database password."""
    secret = environment.db_password.encode()
    return [
        (name, hmac.new(secret, f"{environment.id}:{name}".encode(), hashlib.sha512).hexdigest())
        for name in WP_SALT_NAMES
    ]


def redis_password(environment) -> str:
    """The password of the environment's Redis user, derived like the salts:
    stable across re-renders, and no column of its own."""
    secret = environment.db_password.encode()
    return hmac.new(secret, f"{environment.id}:redis-password".encode(), hashlib.sha256).hexdigest()
