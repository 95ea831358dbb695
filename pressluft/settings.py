"""Pressluft settings, read from the environment (see docs/configuration.md).

With nothing configured the panel runs embedded: SQLite in the data directory,
the django-q2 ORM broker, and the local machine as its node.
"""

import os
import re
from pathlib import Path

import dj_database_url

from pressluft.allowed_hosts import PanelAllowedHosts, derived_allowed_hosts
from pressluft.env import (
    ConfigurationError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_networks,
    env_str,
    secret_from_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("PRESSLUFT_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
LOG_DIR = DATA_DIR / "logs"
LOG_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("PRESSLUFT_SECRET_KEY") or secret_from_file(DATA_DIR / "secret_key")
# Key for secrets stored in the database (SSH keys, DB passwords, credentials).
# It lives outside the database on purpose: a database dump alone reveals nothing.
ENCRYPTION_KEY_FILE = Path(
    env_str("PRESSLUFT_ENCRYPTION_KEY_FILE", str(DATA_DIR / "encryption_key"))
)

DEBUG = env_bool("PRESSLUFT_DEBUG", False)
LISTEN = env_str("PRESSLUFT_LISTEN", "127.0.0.1:8000")
# Host names the panel answers to: PRESSLUFT_ALLOWED_HOSTS, or else the loopback
# names, the listen address (this machine's addresses when it listens on all)
# and the control plane domain set in the admin (pressluft/allowed_hosts.py).
ALLOWED_HOSTS = env_list("PRESSLUFT_ALLOWED_HOSTS", []) or PanelAllowedHosts(derived_allowed_hosts(LISTEN))
# The panel's own domain, served over HTTPS by the Nginx of the panel's machine
# (apps/domains/panel_https.py); wins over the admin's control_plane_domain.
CONTROL_PLANE_DOMAIN_FROM_ENVIRONMENT = env_str("PRESSLUFT_CONTROL_PLANE_DOMAIN", "")
CSRF_TRUSTED_ORIGINS = env_list("PRESSLUFT_CSRF_TRUSTED_ORIGINS", [])
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto header.
BEHIND_PROXY = env_bool("PRESSLUFT_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed;
# from anyone else the header is ignored (apps/core/client_address.py).
TRUSTED_PROXIES = env_networks("PRESSLUFT_TRUSTED_PROXIES")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.nodes",
    "apps.sites",
    "apps.environments",
    "apps.backups",
    "apps.domains",
    "apps.jobs",
    "apps.audit",
]

MIDDLEWARE = [
    # First: the scheme and client address of a request the panel's own Nginx forwarded.
    "apps.core.middleware.PanelProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
    # Before SessionMiddleware so that, on the way out, it sees the cookies set.
    "apps.accounts.middleware.SecureSessionCookieMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.audit.middleware.AuditMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pressluft.urls"
WSGI_APPLICATION = "pressluft.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_config() -> dict:
    url = env_str("DATABASE_URL")
    if url:
        try:
            config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        except Exception as exc:  # the library raises several types for a bad URL
            raise ConfigurationError(f"DATABASE_URL cannot be parsed: {exc}") from exc
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config["OPTIONS"] = _sqlite_options()
        return config
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "pressluft.sqlite3"),
        "OPTIONS": _sqlite_options(),
    }


def _sqlite_options() -> dict:
    # The panel and the worker write at once: WAL lets readers go on during a
    # write, IMMEDIATE takes the write lock at BEGIN (no upgrade deadlock), and
    # the busy timeout makes a writer wait instead of failing "database is locked".
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }


DATABASES = {"default": _database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend plus the per-account lock (apps/accounts/backends.py).
    "apps.accounts.backends.AccountLockBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

SESSION_COOKIE_NAME = "session_token"
SESSION_COOKIE_AGE = 24 * 60 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = False
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # browser clients read it and echo it as X-CSRFToken
CSRF_FAILURE_VIEW = "apps.core.views.csrf_failure"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first: its WWW-Authenticate header turns "not authenticated" into 401.
        "apps.accounts.authentication.BearerTokenAuthentication",
        "apps.accounts.authentication.SessionCookieAuthentication",
    ],
    # Every view declares the permissions each method needs; undeclared methods are refused.
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.DeclaredPermissions"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.LinkHeaderPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.PanelAutoSchema",
    "DEFAULT_THROTTLE_RATES": {"login": env_str("PRESSLUFT_LOGIN_RATE", "30/min")},
    # X-Forwarded-For is never read by DRF itself: throttles key on
    # apps.core.client_address (see apps.core.throttling).
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Pressluft API",
    "DESCRIPTION": "Control a fleet of WordPress sites: sites, environments, jobs and more.",
    "VERSION": "0.2.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["apps.accounts.permissions.IsStaff"],
    # Swagger UI and Redoc assets are served by the panel itself (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api",
    "SCHEMA_PATH_PREFIX_TRIM": True,
    "SERVERS": [{"url": "/api"}],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "ENUM_NAME_OVERRIDES": {
        "LifecycleStatusEnum": "apps.core.choices.LifecycleStatus",
        "JobStatusEnum": "apps.jobs.choices.JobStatus",
        "EnvironmentTypeEnum": "apps.environments.choices.EnvironmentType",
        "PromotionPresetEnum": "apps.environments.choices.PromotionPreset",
        "BackupScopeEnum": "apps.backups.choices.BackupScope",
        "BackupStatusEnum": "apps.backups.choices.BackupStatus",
        "TlsStatusEnum": "apps.domains.choices.TlsStatus",
        "NodeStatusEnum": "apps.nodes.choices.NodeStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.inline_list_responses",
    ],
}

# Django admin and API logins share one lockout (django-axes) per email and
# client address ...
AXES_FAILURE_LIMIT = env_int("PRESSLUFT_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("PRESSLUFT_LOGIN_COOLOFF_HOURS", 0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_USERNAME_CALLABLE = "apps.accounts.lockout.login_username"
AXES_CLIENT_IP_CALLABLE = "apps.core.client_address.client_address"
AXES_VERBOSE = False
# ... and one per email from any address, so that rotating addresses does not
# buy more guesses: this many failures, with no pause as long as the lock
# between them, lock the email for LOGIN_ACCOUNT_LOCK_HOURS (or until an admin
# unlocks it: the User admin's action, or manage.py unlock_account).
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("PRESSLUFT_LOGIN_ACCOUNT_FAILURE_LIMIT", 20)
LOGIN_ACCOUNT_LOCK_HOURS = env_float("PRESSLUFT_LOGIN_ACCOUNT_LOCK_HOURS", 1.0)
if LOGIN_ACCOUNT_FAILURE_LIMIT < 1 or LOGIN_ACCOUNT_LOCK_HOURS <= 0:
    raise ConfigurationError(
        "PRESSLUFT_LOGIN_ACCOUNT_FAILURE_LIMIT must be at least 1 and PRESSLUFT_LOGIN_ACCOUNT_LOCK_HOURS above 0"
    )

# --- nodes and WordPress ---------------------------------------------------
# Where environments live on every node (SPEC "Node layout").
NODE_SITES_ROOT = env_str("PRESSLUFT_NODE_SITES_ROOT", "/var/www/pressluft")
NODE_LIB_DIR = env_str("PRESSLUFT_NODE_LIB_DIR", "/usr/local/lib/pressluft")
# Address Nginx server blocks listen on ("" = all). Tests keep traffic on loopback.
NODE_LISTEN_ADDRESS = env_str("PRESSLUFT_NODE_LISTEN_ADDRESS", "")
# WordPress core for new environments: "directory:/path" (e.g. Debian's
# /usr/share/wordpress) or the URL of an official release tarball, verified
# against WORDPRESS_CORE_SHA1 or, if that is empty, the .sha1 file published beside it.
WORDPRESS_CORE = env_str("PRESSLUFT_WORDPRESS_CORE", "https://wordpress.org/latest.tar.gz")
WORDPRESS_CORE_SHA1 = env_str("PRESSLUFT_WORDPRESS_CORE_SHA1", "")
# Where updates come from: the base URL of a WordPress.org-compatible update
# API (core/version-check, plugins/update-check, themes/update-check), asked
# by WordPress's own update check instead of api.wordpress.org (docs/updates.md).
WORDPRESS_UPDATE_API = env_str("PRESSLUFT_WORDPRESS_UPDATE_API", "https://api.wordpress.org/")
if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", WORDPRESS_UPDATE_API):
    raise ConfigurationError("PRESSLUFT_WORDPRESS_UPDATE_API must be an http:// or https:// URL")
# Defined on every node by node_provision (apps/nodes/remote/nginx-pressluft-*.tmpl).
NGINX_CACHE_ZONE = "pressluft"
# Whether node_provision loads its nftables rules on remote nodes (never on the local node).
NODE_APPLY_FIREWALL = env_bool("PRESSLUFT_NODE_APPLY_FIREWALL", True)
NGINX_SNIPPETS_DIR = "/etc/nginx/snippets"

# --- domains and certificates ---------------------------------------------
# ACME server certbot asks for each domain's certificate (HTTP-01), the CA
# bundle that server's HTTPS is checked with (here: a PEM file on the panel;
# in the admin: the PEM text), the account e-mail, and the DNS resolvers
# ("address" or "address:port", comma-separated) a new domain's A/AAAA records
# are checked against. Each is also a panel setting (admin's Panel settings,
# /api/settings); a variable set here wins over it field by field
# (apps/domains/acme_config.py). Unset everywhere: Let's Encrypt production,
# the system's CAs, no e-mail, the panel's own resolvers.
ACME_FROM_ENVIRONMENT = {
    field: value
    for field, value in (
        ("directory_url", env_str("PRESSLUFT_ACME_DIRECTORY_URL")),
        ("ca_bundle", env_str("PRESSLUFT_ACME_CA_BUNDLE")),
        ("email", env_str("PRESSLUFT_ACME_EMAIL")),
        ("dns_resolvers", env_str("PRESSLUFT_DNS_RESOLVERS")),
    )
    if value is not None
}
# The preview domain and its wildcard certificate's DNS-01 settings: the
# Panel settings of the same names (preview_domain, dns01_provider,
# dns01_rfc2136_server, ...) as PRESSLUFT_<NAME IN UPPER CASE>; a variable set
# (not empty) wins over the stored setting field by field (apps/domains/preview.py).
# <NAME>_FILE names a file holding the value (for the TSIG secret).
PREVIEW_FROM_ENVIRONMENT = {
    name[len("PRESSLUFT_"):].lower(): (env_str(name) or "").strip()
    for name in sorted({re.sub(r"_FILE$", "", key) for key in os.environ
                        if key in ("PRESSLUFT_PREVIEW_DOMAIN", "PRESSLUFT_PREVIEW_DOMAIN_FILE")
                        or key.startswith("PRESSLUFT_DNS01_")})
}
# Certificates this close to expiry are flagged in the admin.
CERTIFICATE_WARN_DAYS = 14

# --- backups -----------------------------------------------------------------
# S3-compatible storage for backups (restic repositories, one per site). Each
# value set here wins over the one in the admin's Panel settings; the admin
# shows which come from the environment (apps/backups/storage.py).
BACKUP_STORAGE_FROM_ENVIRONMENT = {
    field: value
    for field, value in (
        ("endpoint", env_str("PRESSLUFT_BACKUP_S3_ENDPOINT")),
        ("region", env_str("PRESSLUFT_BACKUP_S3_REGION")),
        ("bucket", env_str("PRESSLUFT_BACKUP_S3_BUCKET")),
        ("prefix", env_str("PRESSLUFT_BACKUP_S3_PREFIX")),
        ("access_key_id", env_str("PRESSLUFT_BACKUP_S3_ACCESS_KEY_ID")),
        ("secret_access_key", env_str("PRESSLUFT_BACKUP_S3_SECRET_ACCESS_KEY")),
    )
    if value is not None
}

# --- job queue -------------------------------------------------------------
JOB_DEFAULT_TIMEOUT = env_int("PRESSLUFT_JOB_TIMEOUT", 30 * 60)

# Archives uploaded for deploys: where they are kept, how big they may be
# (as uploaded, and unpacked).
DEPLOY_ARCHIVE_DIR = DATA_DIR / "deploy-archives"
DEPLOY_ARCHIVE_MAX_BYTES = env_int("PRESSLUFT_DEPLOY_ARCHIVE_MAX_MB", 256) * 1024 * 1024
DEPLOY_ARCHIVE_MAX_UNPACKED_BYTES = env_int("PRESSLUFT_DEPLOY_ARCHIVE_MAX_UNPACKED_MB", 1024) * 1024 * 1024
DEPLOY_ARCHIVES_KEPT = 5
# The restore drill: each site's latest backup is restored into a throwaway
# environment and checked this often (days; 0 turns the drill off).
BACKUP_DRILL_EVERY_DAYS = env_int("PRESSLUFT_BACKUP_DRILL_DAYS", 7)
# git deploys from file:// URLs and paths on the node: for the test suite only
# (a deploy from a local path would copy whatever the node's git account can read).
GIT_ALLOW_LOCAL_REPOSITORIES = env_bool("PRESSLUFT_GIT_ALLOW_LOCAL_REPOSITORIES", False)
# Payment API hosts that staging and clone environments refuse to reach, on top
# of the built-in list in docs/staging-holds.md (a name covers its subdomains).
STAGING_EXTRA_PAYMENT_HOSTS = [host.lower() for host in env_list("PRESSLUFT_STAGING_EXTRA_PAYMENT_HOSTS", [])]
JOB_MAX_ATTEMPTS = 3
JOB_RETRY_BACKOFF = [60, 5 * 60, 15 * 60]
# A running job whose worker has not written a heartbeat for this long is
# considered lost (its process died) and is run again.
JOB_HEARTBEAT_INTERVAL = env_float("PRESSLUFT_JOB_HEARTBEAT_INTERVAL", 5.0)
JOB_LOST_AFTER = env_float("PRESSLUFT_JOB_LOST_AFTER", 45.0)
# A claim is a lease: a worker that could not renew its heartbeat for this
# share of JOB_LOST_AFTER stops its handler and its node program, so it has
# stopped before the sweeper lets anyone else run the job.
JOB_LEASE_SHARE = 0.5
# How long a node program waits for another job's program in its scope
# (the node's own lock) before failing with the retryable node_busy.
NODE_LOCK_WAIT = env_float("PRESSLUFT_NODE_LOCK_WAIT", 30.0)
JOB_SWEEP_INTERVAL = env_float("PRESSLUFT_JOB_SWEEP_INTERVAL", 10.0)
# Extra modules whose import registers job handlers (the tests use this).
JOB_HANDLER_MODULES = env_list("PRESSLUFT_JOB_HANDLER_MODULES", [])

Q_CLUSTER = {
    "name": "pressluft",
    "orm": "default",
    "workers": env_int("PRESSLUFT_WORKERS", 2),
    "recycle": 500,
    # django-q2 kills a task after this; each job task asks for its own job
    # timeout plus a grace period, this is only the upper bound.
    "timeout": 4 * 60 * 60,
    "retry": 4 * 60 * 60 + 600,
    "max_attempts": 1,
    "poll": env_float("PRESSLUFT_QUEUE_POLL", 0.1),
    "save_limit": -1,
    "ack_failures": True,
    "catch_up": False,
    "label": "Task queue",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PRESSLUFT_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "axes": {"level": "WARNING"},
        "paramiko": {"level": "WARNING"},
    },
}
