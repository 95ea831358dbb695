"""Start and reload the node's daemons, with systemd (production) or without it.

Without systemd (containers, these test machines) each daemon is started
directly and found again by its pid file.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import node_lock
from nodelib import NodeError, has_systemd, pid_alive, run, wait_for

PHP_VERSION = "8.2"

UNITS = {
    "nginx": "nginx",
    "php-fpm": f"php{PHP_VERSION}-fpm",
    "mariadb": "mariadb",
    "redis": "redis-server",
    "fail2ban": "fail2ban",
}

PID_FILES = {
    "nginx": "/run/nginx.pid",
    "php-fpm": f"/run/php/php{PHP_VERSION}-fpm.pid",
    "mariadb": "/run/mysqld/mysqld.pid",
    "redis": "/run/redis/redis-server.pid",
    "fail2ban": "/run/fail2ban/fail2ban.pid",
}


def _spawn(argv: list[str]) -> None:
    # Detached from our SSH session: the daemon must outlive this command.
    subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _start_directly(name: str) -> None:
    if name == "nginx":
        run(["/usr/sbin/nginx"])
    elif name == "php-fpm":
        Path("/run/php").mkdir(parents=True, exist_ok=True)
        run([f"/usr/sbin/php-fpm{PHP_VERSION}", "--daemonize", "--fpm-config", f"/etc/php/{PHP_VERSION}/fpm/php-fpm.conf"])
    elif name == "mariadb":
        Path("/run/mysqld").mkdir(parents=True, exist_ok=True)
        run(["chown", "mysql:mysql", "/run/mysqld"])
        _spawn(["/usr/sbin/mariadbd", "--user=mysql", f"--pid-file={PID_FILES['mariadb']}"])
        wait_for(lambda: run(["mariadb-admin", "ping"], check=False).returncode == 0, 30, "MariaDB")
    elif name == "redis":
        Path("/run/redis").mkdir(parents=True, exist_ok=True)
        run(["chown", "redis:redis", "/run/redis"])
        run(["runuser", "-u", "redis", "--", "redis-server", "/etc/redis/redis.conf", "--daemonize", "yes",
             "--pidfile", PID_FILES["redis"]])
    elif name == "fail2ban":
        Path("/run/fail2ban").mkdir(parents=True, exist_ok=True)
        run(["fail2ban-client", "-x", "start"], check=False)
    else:
        raise NodeError("service_failed", f"unknown service {name}")


def is_running(name: str) -> bool:
    if has_systemd():
        return run(["systemctl", "is-active", "--quiet", UNITS[name]], check=False).returncode == 0
    return pid_alive(PID_FILES[name]) is not None


def ensure_running(name: str) -> bool:
    """Start the service if it is not running. Returns True if it was started."""
    if is_running(name):
        return False
    if has_systemd():
        run(["systemctl", "enable", "--now", UNITS[name]])
    else:
        _start_directly(name)
    wait_for(lambda: is_running(name), 20, name)
    return True


def reload(name: str) -> None:
    """Reload configuration (start the service if it is not running), holding
    the node's configuration lock so no other program changes it meanwhile."""
    with node_lock.shared_config():
        _reload(name)


def _reload(name: str) -> None:
    if ensure_running(name):
        return
    if has_systemd():
        run(["systemctl", "reload", UNITS[name]])
        return
    pid = pid_alive(PID_FILES[name])
    if name == "nginx":
        run(["/usr/sbin/nginx", "-s", "reload"])
    elif name == "php-fpm" and pid:
        os.kill(pid, signal.SIGUSR2)
        # USR2 re-executes the master; wait until it answers again.
        wait_for(lambda: is_running(name), 20, name)
    elif name == "fail2ban":
        run(["fail2ban-client", "reload"], check=False)
    elif name in ("mariadb", "redis"):
        pass  # their configuration is read at start; nothing to reload


NGINX_WORKER = "nginx: worker process"


def _nginx_workers() -> dict[int, str]:
    """The Nginx master's children: pid -> process title."""
    master = pid_alive(PID_FILES["nginx"])
    found = {}
    if not master:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            if parent != master:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                found[int(entry)] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
    return found


def reload_nginx_and_wait(timeout: float = 20) -> None:
    """Reload Nginx and return once its old workers have stopped taking
    requests (they finish what they serve, titled "is shutting down"): a
    request made afterwards is answered by the new configuration."""
    with node_lock.shared_config():
        before = {pid for pid, title in _nginx_workers().items() if title == NGINX_WORKER}
        _reload("nginx")
        if before:
            wait_for(lambda: not any(_nginx_workers().get(pid) == NGINX_WORKER for pid in before), timeout,
                     "nginx's reload")


def restart(name: str) -> None:
    with node_lock.shared_config():
        _restart(name)


def _restart(name: str) -> None:
    if has_systemd():
        run(["systemctl", "restart", UNITS[name]])
        return
    pid = pid_alive(PID_FILES[name])
    if pid:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: pid_alive(PID_FILES[name]) is None, 30, f"{name} to stop")
    ensure_running(name)
