"""node_provision: install and configure a node's shared stack.

Parameters (JSON on stdin, all optional):

    listen_address   address Nginx's default server listens on: "" for all
                     addresses; null keeps what the node was provisioned with
    apply_firewall   load the nftables rules (the rules file is written either way)
    ssh_port         the port the panel connects to (always allowed by the firewall)
    extra_tcp_ports  more ports to open, e.g. the panel's own on the local node

Idempotent: every step compares what is there with what should be, and the
RESULT's ``changed`` lists what this run did (empty on a second run). The
configuration files are rendered from the ``*.tmpl`` files beside this program
and replaced only after their validator accepted them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

import git_user
import node_health
import redis_acl
import services
from nodelib import LIB_DIR, NodeError, has_systemd, info, install_config, main, run, step, write_file

PHP = services.PHP_VERSION

PACKAGES = [
    "nginx",
    f"php{PHP}-fpm", f"php{PHP}-cli", f"php{PHP}-mysql", f"php{PHP}-redis", f"php{PHP}-xml",
    f"php{PHP}-mbstring", f"php{PHP}-curl", f"php{PHP}-zip", f"php{PHP}-gd", f"php{PHP}-intl",
    "mariadb-server", "mariadb-client", "redis-server",
    "fail2ban", "nftables", "certbot", "rsync",
    # the preview domain's wildcard certificate by DNS-01 (RFC 2136 dynamic updates)
    "python3-certbot-dns-rfc2136",
    # git deploys (ssh for repositories reached with a deploy key)
    "git", "openssh-client",
    # backups: deduplicated, encrypted repositories in S3-compatible storage
    "restic",
    # AES for the cheap repository key (apps/backups/remote/restic_key.py); certbot needs it too
    "python3-cryptography",
]
# fail2ban reads sshd's log from the journal on systemd nodes, through this module.
SYSTEMD_PACKAGES = ["python3-systemd"]

# Names other node programs (site server blocks) rely on; also in NODE_FILE.
CACHE_ZONE = "pressluft"
CACHE_DIR = "/var/cache/nginx/pressluft"
SNIPPETS_DIR = "/etc/nginx/snippets"
NODE_FILE = Path("/etc/pressluft/node.json")
FIREWALL_FILE = "/etc/pressluft/firewall.nft"
NFTABLES_CONF = Path("/etc/nftables.conf")
DEBIAN_DEFAULT_SITE = Path("/etc/nginx/sites-enabled/default")

# putenv: with it, a site sets LD_PRELOAD for the sendmail that mail() starts
# and so runs its own code despite the others being disabled.
DISABLED_FUNCTIONS = ["exec", "passthru", "shell_exec", "system", "proc_open", "popen", "pcntl_exec", "putenv"]

NGINX_TEST = ["nginx", "-t", "-q"]
PHP_FPM_TEST = [f"php-fpm{PHP}", "-t"]
# Parses every option file the server reads and fails on unknown options.
MARIADB_TEST = ["mariadbd", "--user=mysql", "--help", "--verbose"]
FAIL2BAN_TEST = ["fail2ban-client", "--test"]


class ConfigTemplate(string.Template):
    """``@@name`` placeholders: ``$`` belongs to Nginx and ``%`` to Fail2Ban."""

    delimiter = "@@"


def render(template: str, values: dict) -> str:
    """Fill a template; a placeholder without a value is an error, not a blank."""
    return ConfigTemplate((LIB_DIR / template).read_text()).substitute(values)


@dataclass(frozen=True)
class Config:
    template: str
    path: str
    service: str  # whose configuration it is: reloaded or restarted when it changed
    validate: list[str] | None
    mode: int = 0o644


# In install order: a file is validated together with those before it.
CONFIGS = [
    Config("nginx-pressluft-security-headers.conf.tmpl", f"{SNIPPETS_DIR}/pressluft-security-headers.conf", "nginx", NGINX_TEST),
    Config("nginx-pressluft-waf.conf.tmpl", f"{SNIPPETS_DIR}/pressluft-waf.conf", "nginx", NGINX_TEST),
    Config("nginx-pressluft-waf-xmlrpc.conf.tmpl", f"{SNIPPETS_DIR}/pressluft-waf-xmlrpc.conf", "nginx", NGINX_TEST),
    Config("nginx-pressluft-http.conf.tmpl", "/etc/nginx/conf.d/pressluft.conf", "nginx", NGINX_TEST),
    Config("nginx-pressluft-default-server.conf.tmpl", "/etc/nginx/conf.d/pressluft-default-server.conf", "nginx", NGINX_TEST),
    Config("php-pressluft-hardening.ini.tmpl", f"/etc/php/{PHP}/fpm/conf.d/99-pressluft-hardening.ini", "php-fpm", PHP_FPM_TEST),
    Config("php-fpm-pressluft.conf.tmpl", f"/etc/php/{PHP}/fpm/php-fpm.conf", "php-fpm", PHP_FPM_TEST),
    Config("mariadb-pressluft.cnf.tmpl", "/etc/mysql/mariadb.conf.d/90-pressluft.cnf", "mariadb", MARIADB_TEST),
    # Redis has no configuration check; a bad file shows when it restarts.
    Config("redis-pressluft.conf.tmpl", "/etc/redis/redis.conf", "redis", None),
    Config("certbot-pressluft-reload-nginx.sh.tmpl", "/etc/letsencrypt/renewal-hooks/deploy/pressluft-reload-nginx",
           "certbot", None, 0o755),
    Config("fail2ban-pressluft-wp-login.conf.tmpl", "/etc/fail2ban/filter.d/pressluft-wp-login.conf", "fail2ban", None),
    Config("fail2ban-pressluft-jails.conf.tmpl", "/etc/fail2ban/jail.d/pressluft.conf", "fail2ban", FAIL2BAN_TEST),
    # Validated (nft -c) only where it is applied: checking needs nf_tables.
    Config("nftables-pressluft.nft.tmpl", FIREWALL_FILE, "firewall", None, 0o600),
]


# --- what the node is -----------------------------------------------------------

def memory_bytes() -> int:
    """Physical memory, or the cgroup's limit if that is lower (containers)."""
    total = node_health.meminfo().get("MemTotal", 0)
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < total:
            total = int(raw)
    return total


def has_ipv6() -> bool:
    try:
        return bool(Path("/proc/net/if_inet6").read_text().strip())
    except OSError:
        return False


def sshd_ports() -> list[int]:
    """Ports the system's sshd is configured to listen on (sshd -T)."""
    try:
        done = run(["sshd", "-T"], check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    ports = set()
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "port" and value.isdigit():
            ports.add(int(value))
        elif key == "listenaddress":
            port = value.rpartition(":")[2]
            if port.isdigit():
                ports.add(int(port))
    return sorted(ports)


def session_port() -> int | None:
    """The port this very SSH session came in by (client ip, port, server ip, port)."""
    parts = os.environ.get("SSH_CONNECTION", "").split()
    return int(parts[3]) if len(parts) == 4 and parts[3].isdigit() else None


def recorded_settings() -> dict:
    try:
        return json.loads(NODE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def detect_facts() -> dict:
    return {
        "memory_bytes": memory_bytes(),
        "ipv6": has_ipv6(),
        "systemd": has_systemd(),
        "sshd_ports": sshd_ports(),
        "session_port": session_port(),
        "auth_log": Path("/var/log/auth.log").exists(),
        "recorded": recorded_settings(),
    }


# --- from parameters and facts to values (pure) ------------------------------------

def _port(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise NodeError("bad_parameters", f"{what} must be a port number, got {value!r}")
    return value


def settings_from(params: dict, facts: dict) -> dict:
    listen_address = params.get("listen_address")
    if listen_address is None:
        listen_address = facts["recorded"].get("listen_address", "")
    if not isinstance(listen_address, str):
        raise NodeError("bad_parameters", f"listen_address must be a string, got {listen_address!r}")
    if listen_address:
        try:
            ipaddress.IPv4Address(listen_address)
        except ValueError:
            raise NodeError("bad_parameters", f"listen_address must be an IPv4 address or empty, got {listen_address!r}") from None
    ssh_port = _port(params.get("ssh_port", 22), "ssh_port")
    extra = params.get("extra_tcp_ports") or []
    if not isinstance(extra, list):
        raise NodeError("bad_parameters", "extra_tcp_ports must be a list of port numbers")
    extra = [_port(port, "extra_tcp_ports") for port in extra]
    # Strictly a boolean: the string "false" must not load a firewall.
    apply_firewall = params.get("apply_firewall", True)
    if not isinstance(apply_firewall, bool):
        raise NodeError("bad_parameters", f"apply_firewall must be true or false, got {apply_firewall!r}")
    ssh_ports = sorted({ssh_port, *facts["sshd_ports"], *([facts["session_port"]] if facts["session_port"] else [])})
    return {
        "listen_address": listen_address,
        "apply_firewall": apply_firewall,
        "ssh_ports": ssh_ports,
        "tcp_ports": sorted({*ssh_ports, 80, 443, *extra}),
        "redis_maxmemory_mb": max(1, facts["memory_bytes"] // 10 // (1024 * 1024)),
    }


def listen_directives(listen_address: str, ipv6: bool) -> str:
    if listen_address:
        lines = [f"listen {listen_address}:80 default_server;", f"listen {listen_address}:443 ssl default_server;"]
    else:
        lines = ["listen 80 default_server;", "listen 443 ssl default_server;"] + (
            ["listen [::]:80 default_server;", "listen [::]:443 ssl default_server;"] if ipv6 else [])
    # HTTPS for a name no domain has a certificate for: the handshake is
    # refused, so no site's certificate is shown under another name.
    lines.append("ssl_reject_handshake on;")
    return "\n".join(f"    {line}" for line in lines)


def sshd_jail(ssh_ports: list[int], facts: dict) -> str:
    ports = ",".join(str(port) for port in ssh_ports)
    if facts["systemd"]:
        return f"enabled = true\nport = {ports}\nbackend = systemd"
    if facts["auth_log"]:
        return f"enabled = true\nport = {ports}\nlogpath = /var/log/auth.log\nbackend = polling"
    return (
        "# sshd logs nowhere Fail2Ban can read on this node (no journal, no\n"
        "# /var/log/auth.log), so this jail would only stop Fail2Ban from starting.\n"
        "enabled = false"
    )


def template_values(settings: dict, facts: dict) -> dict:
    return {
        "cache_dir": CACHE_DIR,
        "cache_zone": CACHE_ZONE,
        "cache_zone_size": "32m",
        "cache_inactive": "60m",
        "cache_max_size": "1g",
        "cache_valid": "60m",
        "snippets_dir": SNIPPETS_DIR,
        "listen_directives": listen_directives(settings["listen_address"], facts["ipv6"]),
        "disable_functions": ",".join(DISABLED_FUNCTIONS),
        "php_version": PHP,
        "php_fpm_pid": services.PID_FILES["php-fpm"],
        "redis_maxmemory": f"{settings['redis_maxmemory_mb']}mb",
        "redis_acl_file": str(redis_acl.ACL_FILE),
        "sshd_jail": sshd_jail(settings["ssh_ports"], facts),
        "tcp_ports": ", ".join(str(port) for port in settings["tcp_ports"]),
    }


def render_all(values: dict) -> dict[str, str]:
    """Destination path -> content, for every configuration file."""
    return {config.path: render(config.template, values) for config in CONFIGS}


def node_file(settings: dict) -> str:
    """What site programs need to know about this node's shared setup."""
    return json.dumps(
        {
            "listen_address": settings["listen_address"],
            "php_version": PHP,
            "fastcgi_cache_zone": CACHE_ZONE,
            "fastcgi_cache_dir": CACHE_DIR,
            "security_headers_snippet": f"{SNIPPETS_DIR}/pressluft-security-headers.conf",
            "waf_snippet": f"{SNIPPETS_DIR}/pressluft-waf.conf",
            "waf_xmlrpc_snippet": f"{SNIPPETS_DIR}/pressluft-waf-xmlrpc.conf",
        },
        indent=2,
        sort_keys=True,
    ) + "\n"


# --- doing it ------------------------------------------------------------------------

def missing_packages(names: list[str]) -> list[str]:
    done = run(["dpkg-query", "-W", "-f=${Package}\t${Status}\n", *names], check=False)
    installed = {
        package for package, _, status in (line.partition("\t") for line in done.stdout.splitlines())
        if status == "install ok installed"
    }
    return [name for name in names if name not in installed]


def install_packages(changed: list[str], facts: dict) -> None:
    wanted = PACKAGES + (SYSTEMD_PACKAGES if facts["systemd"] else [])
    missing = missing_packages(wanted)
    if not missing:
        info("all packages are installed")
        return
    info("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Waits for another apt (unattended-upgrades on a fresh server) instead of failing.
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
    try:
        run(apt + ["update"], env=env, timeout=900)
        run(apt + ["install", "-y", "--no-install-recommends",
                   "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", *missing],
            env=env, timeout=1500)
    except subprocess.CalledProcessError as exc:
        tail = " | ".join((exc.stderr or exc.stdout or "").strip().splitlines()[-3:])
        raise NodeError("remote_step_failed", f"apt-get could not install {' '.join(missing)}: {tail}", retryable=True) from None
    except subprocess.TimeoutExpired:
        raise NodeError("remote_step_failed", "apt-get did not finish in time", retryable=True) from None
    changed.append("packages: " + " ".join(missing))


def disable_debian_default_site(changed: list[str]) -> None:
    # It claims default_server on port 80 and would answer unknown hostnames.
    if not os.path.lexists(DEBIAN_DEFAULT_SITE):
        return
    target = os.readlink(DEBIAN_DEFAULT_SITE) if DEBIAN_DEFAULT_SITE.is_symlink() else None
    content = None if target else DEBIAN_DEFAULT_SITE.read_bytes()
    DEBIAN_DEFAULT_SITE.unlink()
    check = run(NGINX_TEST, check=False)
    if check.returncode != 0:
        if target:
            DEBIAN_DEFAULT_SITE.symlink_to(target)
        else:
            write_file(DEBIAN_DEFAULT_SITE, content)
        raise NodeError("config_invalid", f"Nginx refused its configuration without {DEBIAN_DEFAULT_SITE}; restored it")
    changed.append(f"removed {DEBIAN_DEFAULT_SITE}")


def ensure_cache_dir(changed: list[str]) -> None:
    # Nginx's workers (www-data) write the cache; nobody else reads it.
    path = Path(CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    www = pwd.getpwnam("www-data")
    stat = path.stat()
    if (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) != (www.pw_uid, www.pw_gid, 0o700):
        shutil.chown(path, "www-data", "www-data")
        path.chmod(0o700)
        changed.append(f"prepared {CACHE_DIR}")


def install_configs(contents: dict[str, str], which: str, changed: list[str], changed_services: set[str],
                    validate_override: dict[str, list[str] | None] | None = None) -> None:
    for config in CONFIGS:
        if config.service != which:
            continue
        validate = (validate_override or {}).get(config.path, config.validate)
        if install_config(config.path, contents[config.path], validate, config.mode):
            changed.append(config.path)
            changed_services.add(config.service)


def settle(name: str, config_changed: bool, how: str, changed: list[str]) -> None:
    """Start the service if it is down; otherwise apply a changed configuration."""
    if services.ensure_running(name):
        changed.append(f"started {name}")
    elif config_changed:
        (services.restart if how == "restart" else services.reload)(name)
        changed.append(f"{how}ed {name}")


def firewall(settings: dict, facts: dict, contents: dict[str, str], changed: list[str]) -> dict:
    report = {"rules_file": FIREWALL_FILE, "tcp_ports": settings["tcp_ports"], "applied": False}
    validate = ["nft", "-c", "-f", FIREWALL_FILE] if settings["apply_firewall"] else None
    changed_services: set[str] = set()
    install_configs(contents, "firewall", changed, changed_services, {FIREWALL_FILE: validate})
    if not settings["apply_firewall"]:
        report["reason"] = "apply_firewall is false: the rules were written, not loaded"
        info(report["reason"])
        return report
    live = run(["nft", "list", "table", "inet", "pressluft"], check=False).returncode == 0
    if changed_services or not live:
        run(["nft", "-f", FIREWALL_FILE])
        changed.append("loaded the firewall rules")
    if facts["systemd"]:
        # Loaded again at boot: Debian's nftables service reads /etc/nftables.conf.
        include = f'include "{FIREWALL_FILE}"'
        current = NFTABLES_CONF.read_text() if NFTABLES_CONF.exists() else "#!/usr/sbin/nft -f\n"
        if include not in current.splitlines():
            write_file(NFTABLES_CONF, current.rstrip("\n") + f"\n\n# Added by Pressluft\n{include}\n", 0o755)
            changed.append(f"{NFTABLES_CONF} includes {FIREWALL_FILE}")
        if run(["systemctl", "is-enabled", "--quiet", "nftables"], check=False).returncode != 0:
            run(["systemctl", "enable", "nftables"])
            changed.append("enabled nftables at boot")
    report["applied"] = True
    return report


def fail2ban(contents: dict[str, str], changed: list[str]) -> dict:
    """Best effort: a node whose kernel or container cannot run Fail2Ban is still
    a working web server; the report says what is missing."""
    changed_services: set[str] = set()
    try:
        install_configs(contents, "fail2ban", changed, changed_services)
        settle("fail2ban", bool(changed_services), "reload", changed)
    except (NodeError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        message = exc.message if isinstance(exc, NodeError) else f"{type(exc).__name__}: {exc}"
        info(f"Fail2Ban is not running: {message}")
        return {"running": False, "error": message}
    return {"running": True}


def provision(params: dict) -> dict:
    changed: list[str] = []
    facts = detect_facts()
    settings = settings_from(params, facts)
    contents = render_all(template_values(settings, facts))

    step("packages")
    install_packages(changed, facts)

    step("nginx: default server, cache zone, security headers, WAF")
    disable_debian_default_site(changed)
    ensure_cache_dir(changed)
    changed_services: set[str] = set()
    install_configs(contents, "nginx", changed, changed_services)
    if write_file(NODE_FILE, node_file(settings)):
        changed.append(str(NODE_FILE))

    step("PHP-FPM hardening")
    install_configs(contents, "php-fpm", changed, changed_services)

    step("MariaDB and Redis on loopback")
    install_configs(contents, "mariadb", changed, changed_services)
    # The users first: Redis refuses to start when its aclfile is missing.
    if redis_acl.prepare():
        changed.append(str(redis_acl.ACL_FILE))
        changed_services.add("redis")
    install_configs(contents, "redis", changed, changed_services)

    step("git deploys: the unprivileged account git runs as")
    if not git_user.exists():
        git_user.ensure()
        changed.append(f"created the system user {git_user.GIT_USER}")

    step("certbot renewal hook")
    install_configs(contents, "certbot", changed, changed_services)

    step("services")
    settle("mariadb", "mariadb" in changed_services, "restart", changed)
    settle("redis", "redis" in changed_services, "restart", changed)
    settle("php-fpm", "php-fpm" in changed_services, "reload", changed)
    settle("nginx", "nginx" in changed_services, "reload", changed)

    step("Fail2Ban jails")
    fail2ban_report = fail2ban(contents, changed)

    step("firewall")
    firewall_report = firewall(settings, facts, contents, changed)

    step("health")
    info("changed: " + (", ".join(changed) if changed else "nothing, the node was already provisioned"))
    return {
        "changed": changed,
        "listen_address": settings["listen_address"],
        "fail2ban": fail2ban_report,
        "firewall": firewall_report,
        **node_health.collect(),
    }


if __name__ == "__main__":
    main(provision)
