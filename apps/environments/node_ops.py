"""What the panel asks a node to do for one environment. Each function
builds the parameters (data only) and runs one node program."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.environments import naming
from apps.environments.choices import EnvironmentType
from apps.environments.node_templates import redis_password, render, wordpress_salts
from apps.jobs.errors import JobError
from apps.nodes import ssh
from apps.nodes.connections import open_connection
from apps.nodes.remote_exec import as_job_error, run_program

HEALTH_TIMEOUT = 10.0

# Disabled in every environment's PHP-FPM pool (on top of the node-wide list):
# nothing that starts a process, and putenv, with which a site would hand
# LD_PRELOAD to the sendmail that mail() starts.
PHP_DISABLED_FUNCTIONS = ("exec", "passthru", "shell_exec", "system", "proc_open", "popen", "pcntl_exec", "putenv")
# Outside production no mail leaves: WordPress's wp_mail is held by the staging
# must-use plugin before it reaches mail(), so only code that bypasses it needs these.
NON_PRODUCTION_DISABLED_FUNCTIONS = ("mail", "mb_send_mail")


def core_source() -> dict:
    source = settings.WORDPRESS_CORE
    if source.startswith("directory:"):
        return {"type": "directory", "path": source.split(":", 1)[1]}
    return {"type": "tarball", "url": source, "sha1": settings.WORDPRESS_CORE_SHA1}


def _base(environment) -> dict:
    return {"system_name": naming.system_name(environment), "root": naming.root(environment),
            "url": naming.canonical_url(environment)}


def redis_params(environment) -> dict:
    return {"password": redis_password(environment), "key_prefix": naming.redis_key_prefix(environment)}


def cache_params(environment) -> dict:
    """What a node program needs to purge the environment's caches: the host
    names its pages are cached under, and its Redis key prefix."""
    hostnames = [urlsplit(environment.preview_url).hostname]
    hostnames += [name for name in environment.domains.values_list("hostname", flat=True) if name not in hostnames]
    return {"hostnames": hostnames, "key_prefix": naming.redis_key_prefix(environment)}


def config_context(environment) -> dict:
    """What the templates in node_config/ are rendered with."""
    hostnames = [urlsplit(environment.preview_url).hostname]
    listen = f"{settings.NODE_LISTEN_ADDRESS}:" if settings.NODE_LISTEN_ADDRESS else ""
    is_production = environment.environment_type == EnvironmentType.PRODUCTION
    disabled_functions = PHP_DISABLED_FUNCTIONS + (() if is_production else NON_PRODUCTION_DISABLED_FUNCTIONS)
    return {
        "env": environment,
        "system_name": naming.system_name(environment),
        "root": naming.root(environment),
        "url": naming.canonical_url(environment),
        "db_password": environment.db_password,
        "salts": wordpress_salts(environment),
        "redis_user": naming.system_name(environment),
        "redis_password": redis_password(environment),
        "redis_key_prefix": naming.redis_key_prefix(environment),
        "disabled_functions": ",".join(disabled_functions),
        "is_production": is_production,
        "wp_environment_type": "production" if is_production else "staging",
        "hostnames": hostnames,
        "listen": listen,
        "fastcgi_cache_enabled": environment.fastcgi_cache_enabled,
        "cache_zone": settings.NGINX_CACHE_ZONE,
        "snippets_dir": settings.NGINX_SNIPPETS_DIR,
        # The staging must-use plugin's outgoing-request policy (docs/staging-holds.md).
        "outgoing_allowed_hosts": ",".join(environment.outgoing_allowed_hosts or []),
        "extra_payment_hosts": ",".join(settings.STAGING_EXTRA_PAYMENT_HOSTS),
        **preview_tls(environment),
    }


def preview_tls(environment) -> dict:
    """An https preview URL is served with the preview domain's wildcard
    certificate, and its port 80 answers 301 to it (docs/preview-domain.md)."""
    parts = urlsplit(environment.preview_url)
    if parts.scheme != "https":
        return {"ssl_certificate": "", "ssl_certificate_key": "", "http_redirect": False}
    from apps.domains import preview

    certificate, key = preview.certificate_paths(preview.domain_of(parts.hostname))
    return {"ssl_certificate": certificate, "ssl_certificate_key": key, "http_redirect": True}


def render_configs(environment) -> dict:
    context = config_context(environment)
    return {
        "wp_config": render("wp-config.php.tmpl", context),
        "pool": render("php-fpm-pool.conf.tmpl", context),
        "vhost": render("nginx-vhost.conf.tmpl", context),
    }


def ensure_preview_certificate(environment, ctx) -> None:
    """An https preview URL needs the preview domain's wildcard certificate on
    the node before its server block can be installed (apps/domains/preview.py)."""
    if ctx is not None and urlsplit(environment.preview_url).scheme == "https":
        from apps.domains import preview

        preview.ensure_for_environment(environment, ctx)


def setup(environment, *, release: str, install: dict | None, ctx=None) -> dict:
    ensure_preview_certificate(environment, ctx)
    params = dict(
        _base(environment),
        release=release,
        db_password=environment.db_password,
        core=core_source(),
        files=render_configs(environment),
        paths={"pool": naming.pool_path(environment), "vhost": naming.vhost_path(environment)},
        install=install,
        redis=redis_params(environment),
        object_cache=environment.redis_cache_enabled,
    )
    return run_program(environment.node, "env_setup.py", params, ctx=ctx, timeout=1200)


def clone(environment, source, *, release: str, wp_options: dict | None = None, ctx=None) -> dict:
    """Make ``environment`` a full copy of ``source`` (same node): code, uploads, database, URLs rewritten."""
    ensure_preview_certificate(environment, ctx)
    params = dict(
        _base(environment),
        release=release,
        db_password=environment.db_password,
        files=render_configs(environment),
        paths={"pool": naming.pool_path(environment), "vhost": naming.vhost_path(environment)},
        source=_base(source),
        wp_options=wp_options or {},
        redis=redis_params(environment),
        object_cache=environment.redis_cache_enabled,
    )
    return run_program(environment.node, "env_clone.py", params, ctx=ctx, timeout=3600)


def teardown(environment, ctx=None) -> dict:
    params = dict(_base(environment), paths={"pool": naming.pool_path(environment), "vhost": naming.vhost_path(environment),
                                             "domains_vhost": naming.domains_vhost_path(environment)},
                  redis={"key_prefix": naming.redis_key_prefix(environment)},
                  certificates=sorted(environment.domains.values_list("hostname", flat=True)))
    return run_program(environment.node, "env_teardown.py", params, ctx=ctx, timeout=600)


# wp_login.py and wp_held_mail.py run while an operator waits: the callers
# use apps.nodes.operator_calls.run_now with these parameters.
def login_params(environment, lifetime: int) -> dict:
    return dict(_base(environment), lifetime=lifetime)


def held_mail_params(environment, limit: int) -> dict:
    return dict(_base(environment), limit=limit)


def staging_holds_params(environment, limit: int) -> dict:
    return dict(_base(environment), limit=limit)


def write_config_params(environment) -> dict:
    """env_write_config.py: the environment's wp-config.php as the panel renders it now."""
    return dict(_base(environment), wp_config=render_configs(environment)["wp_config"])


def run_scheduled(environment, ctx=None) -> dict:
    """Run the environment's held WP-Cron events and Action Scheduler queue once."""
    return run_program(environment.node, "wp_run_scheduled.py", _base(environment), ctx=ctx, timeout=900)


def held_mail(environment, limit, timeout: float = 15) -> list:
    """The helper's raw answer, as a job would get it (JobError on failure)."""
    return run_program(environment.node, "wp_held_mail.py", held_mail_params(environment, limit),
                       timeout=timeout)["mails"]


@dataclass
class HealthReport:
    http_status: int | None
    installed: bool
    database: bool
    problem: str

    @property
    def healthy(self) -> bool:
        return not self.problem


class _NodeHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed IP, with SNI and certificate checks for the site's host name."""

    def __init__(self, ip: str, server_name: str, **kwargs):
        super().__init__(server_name, 443, **kwargs)
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def http_status(environment, path: str = "/") -> int:
    """GET the environment's URL from its node's public IP with the right Host
    header (and SNI): public DNS is not asked, the preview host may not resolve."""
    return http_get(environment, path, max_body=0)[0]


def http_get(environment, path: str = "/", *, max_body: int = 2 * 1024 * 1024) -> tuple[int, bytes]:
    """Status and (at most ``max_body`` bytes of) body of one page, asked as http_status asks."""
    parts = urlsplit(environment.preview_url)
    ip = environment.node.public_ipv4
    if parts.scheme == "https":
        # The node is asked by its address for the preview host: whether the site
        # answers is the question, not who issued the wildcard certificate (a
        # private ACME server's root is not the panel's to trust; node health
        # reports each certificate's expiry).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = _NodeHTTPSConnection(ip, parts.hostname, timeout=HEALTH_TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(ip, 80, timeout=HEALTH_TIMEOUT)
    try:
        connection.request("GET", path, headers={"Host": parts.hostname, "User-Agent": "Pressluft-HealthCheck/1"})
        response = connection.getresponse()
        return response.status, (response.read(max_body) if max_body else b"")
    finally:
        connection.close()


def check_health(environment, ctx=None, *, fatal_errors_since: float | None = None) -> HealthReport:
    """HTTP 200 from the home page and the login page, WordPress installed,
    database reachable, and (after a deploy) no new PHP fatal error in the
    environment's error log; 10 s per check, one retry after a short pause."""
    report = None
    for attempt in (1, 2):
        report = _check_once(environment, fatal_errors_since)
        if report.healthy:
            break
        if ctx is not None:
            ctx.log(f"health check attempt {attempt}: {report.problem}")
        if attempt == 1:
            (ctx.sleep if ctx is not None else time.sleep)(2)
    return report


def _check_once(environment, fatal_errors_since: float | None = None) -> HealthReport:
    try:
        # Both pages at once (each a PHP render); the node looks for fatal errors once both answered.
        with ThreadPoolExecutor(2) as pool:
            home, login = pool.submit(http_status, environment), pool.submit(http_status, environment, "/wp-login.php")
            status, login_status = home.result(), login.result()
    except OSError as exc:
        return HealthReport(None, False, False, f"no HTTP answer from {environment.preview_url} ({type(exc).__name__})")
    try:
        params = dict(_base(environment), since=fatal_errors_since)
        state = run_program(environment.node, "env_health.py", params, timeout=HEALTH_TIMEOUT * 2)
    except JobError as exc:
        if exc.code == "unsafe_path":
            raise  # not a health verdict: the node refused to look, the operator must
        return HealthReport(status, False, False, exc.message)
    problems = []
    if status != 200:
        problems.append(f"home page answered {status}")
    if login_status != 200:
        problems.append(f"wp-login.php answered {login_status}")
    fatal = state.get("fatal_errors") or []
    if fatal:
        problems.append(f"{len(fatal)} new PHP fatal error(s), first: {fatal[0]}")
    if not state.get("installed"):
        problems.append("WordPress is not installed")
    if not state.get("database"):
        problems.append("the database is unreachable" + (f" ({state['error']})" if state.get("error") else ""))
    return HealthReport(status, bool(state.get("installed")), bool(state.get("database")), "; ".join(problems))


# Where archives wait on a node until env_deploy.py has unpacked them (root's only).
NODE_ARCHIVE_DIR = "/var/lib/pressluft/deploy-archives"


def deploy_git(environment, *, release: str, repository: str, ref: str, keep: int = 5, ctx=None) -> dict:
    # The node refuses a local repository (file:// or a path) unless told this installation allows them.
    git = {"repository": repository, "ref": ref, "allow_local": settings.GIT_ALLOW_LOCAL_REPOSITORIES}
    if repository == environment.git_repository and environment.deploy_key_private:
        # The key travels as data on stdin; the node keeps it only for the fetch.
        git["deploy_key"] = environment.deploy_key_private
    params = dict(_base(environment), release=release, git=git, keep=keep, cache=cache_params(environment))
    return run_program(environment.node, "env_deploy.py", params, ctx=ctx, timeout=1800)


def deploy_archive(environment, archive, *, release: str, keep: int = 5, ctx=None) -> dict:
    """Copy the stored archive to the node, then build the release from it there."""
    remote_path = f"{NODE_ARCHIVE_DIR}/{archive.pk}"
    try:
        connection = open_connection(environment.node)
        connection.run(["install", "-d", "-m", "700", NODE_ARCHIVE_DIR])
        with open(archive.stored_path, "rb") as stream:
            connection.upload_stream(remote_path, stream, 0o600)
    except ssh.SshError as exc:
        raise as_job_error(exc) from None
    params = dict(_base(environment), release=release, keep=keep, cache=cache_params(environment),
                  archive={"path": remote_path, "max_unpacked_bytes": settings.DEPLOY_ARCHIVE_MAX_UNPACKED_BYTES})
    return run_program(environment.node, "env_deploy.py", params, ctx=ctx, timeout=1800)


def rollback(environment, release: str, ctx=None) -> dict:
    params = dict(_base(environment), release=release, cache=cache_params(environment))
    return run_program(environment.node, "env_rollback.py", params, ctx=ctx, timeout=120)


def toggle_cache(environment, ctx=None) -> dict:
    """Bring the node in line with the environment's cache flags (as set on
    ``environment``, saved or not): the server block with or without the
    FastCGI page cache, the object cache drop-in present or not; then purge."""
    params = dict(
        _base(environment),
        files={"vhost": render_configs(environment)["vhost"]},
        paths={"vhost": naming.vhost_path(environment)},
        object_cache=environment.redis_cache_enabled,
        cache=cache_params(environment),
    )
    return run_program(environment.node, "env_cache_toggle.py", params, ctx=ctx, timeout=300)


def purge_caches(environment, ctx=None) -> dict:
    """Purge the environment's page cache entries and Redis keys (only its own).
    The one step every change of what a site shows ends with: deploys and
    rollbacks do it inside their own node program; updates, promotions,
    restores and domain changes call this."""
    params = dict(_base(environment), cache=cache_params(environment))
    return run_program(environment.node, "cache_purge.py", params, ctx=ctx, timeout=300)


# Updates (env_update.py): what WordPress's update check offers, and the update itself.
UPDATE_CHECK_TIMEOUT = 120


def update_params(environment, action: str, **extra) -> dict:
    return dict(_base(environment), action=action, api=settings.WORDPRESS_UPDATE_API, cache=cache_params(environment),
                **extra)


def apply_updates(environment, *, scope: str, release: str, keep: int = 5, ctx=None) -> dict:
    params = update_params(environment, "apply", scope=scope, release=release, keep=keep,
                           max_package_bytes=settings.DEPLOY_ARCHIVE_MAX_UNPACKED_BYTES)
    return run_program(environment.node, "env_update.py", params, ctx=ctx, timeout=3600)


def check_updates(environment, ctx=None) -> dict:
    return run_program(environment.node, "env_update.py", update_params(environment, "check"), ctx=ctx,
                       timeout=UPDATE_CHECK_TIMEOUT)


def database_fingerprint(environment, ctx=None) -> dict:
    return run_program(environment.node, "env_update.py", update_params(environment, "db_fingerprint"), ctx=ctx,
                       timeout=UPDATE_CHECK_TIMEOUT)


def restore_update_database(environment, *, repository: dict, snapshot_id: str, sha256: str, ctx=None) -> dict:
    params = update_params(environment, "restore_db", repository=repository, snapshot_id=snapshot_id, sha256=sha256,
                           db_password=environment.db_password)
    return run_program(environment.node, "env_update.py", params, ctx=ctx, timeout=3600)


def checksums(environment, ctx=None) -> dict:
    """The environment's tables (row counts, checksums) and paths (code and
    uploads: kind, size, SHA-256), for drift checks and their baselines
    (env_checksums.py). Reads only."""
    params = dict(_base(environment), db_password=environment.db_password)
    return run_program(environment.node, "env_checksums.py", params, ctx=ctx, timeout=3600)


def refresh_from_production(environment, production, ctx=None) -> dict:
    """env_refresh.py: production's protected tables (by the environment's preset)
    and uploads copied into ``environment``, URLs rewritten; production measured
    first (the new drift baseline, in the result)."""
    params = dict(
        _base(environment),
        db_password=environment.db_password,
        redis=redis_params(environment),
        source=dict(_base(production), db_password=production.db_password),
        preset=environment.promotion_preset,
    )
    return run_program(environment.node, "env_refresh.py", params, ctx=ctx, timeout=3600)


# Promotion (env_promote.py): the source's code and non-protected tables into its site's production.
# Every environment's wp-config.php sets this prefix (node_config/wp-config.php.tmpl).
TABLE_PREFIX = "wp_"


def promotion_params(source, target, phase: str, **extra) -> dict:
    return dict(phase=phase, source=_base(source), target=dict(_base(target), db_password=target.db_password),
                preset=source.promotion_preset, prefix=TABLE_PREFIX, cache=cache_params(target), **extra)


def promotion_phase(source, target, phase: str, *, ctx=None, timeout: float = 3600, **extra) -> dict:
    """One phase of env_promote.py on the target's node (plan, prepare, switch, finish, revert, abandon)."""
    return run_program(target.node, "env_promote.py", promotion_params(source, target, phase, **extra), ctx=ctx,
                       timeout=timeout)
