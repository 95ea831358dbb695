"""Settings for the test suite (scripts/test sets DATABASE_URL to a throwaway PostgreSQL)."""

from pressluft.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Test-only job handlers; worker processes started by tests import them too.
JOB_HANDLER_MODULES = ["tests.jobhandlers"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The local test node serves WordPress from Debian's package (no internet here)
# and keeps every listener on loopback.
WORDPRESS_CORE = "directory:/usr/share/wordpress"
NODE_LISTEN_ADDRESS = "127.0.0.1"
# The rules would cut this machine's non-loopback traffic; tests inspect the file only.
NODE_APPLY_FIREWALL = False
# The deploy tests fetch from repositories in local directories.
GIT_ALLOW_LOCAL_REPOSITORIES = True
