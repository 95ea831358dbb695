"""node_health: a quick, read-only look at a node.

Reports which services run, root filesystem and memory use, load, and the
versions of the stack. Changes nothing; runs in well under two seconds, so
the panel can call it on demand. ``provision.py`` reuses ``collect()`` for
the report it ends with.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import services
from nodelib import main

try:  # the domains' certificates (apps/domains/remote), shipped in the same bundle
    import certificates
except ImportError:  # pragma: no cover - an older bundle
    certificates = None

PHP = services.PHP_VERSION

# program argv, the stream its version is printed on, the pattern that finds it
VERSION_PROBES = {
    "nginx": (["nginx", "-v"], r"nginx/(\S+)"),
    "php": ([f"php{PHP}", "-n", "-v"], r"^PHP (\S+)"),
    "mariadb": (["mariadbd", "--version"], r"Ver (\S+?)(?:-MariaDB)?[\s-]"),
    "redis": (["redis-server", "--version"], r"v=(\S+)"),
}


def _version(argv: list[str], pattern: str) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1.5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, done.stdout + "\n" + done.stderr, re.MULTILINE)
    return match.group(1) if match else None


def os_release() -> str | None:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return None
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
    return match.group(1) if match else None


def versions() -> dict:
    # Started together: each probe is a process start, and they add up.
    with ThreadPoolExecutor(max_workers=len(VERSION_PROBES)) as pool:
        futures = {name: pool.submit(_version, *probe) for name, probe in VERSION_PROBES.items()}
        found = {name: future.result() for name, future in futures.items()}
    found["os"] = os_release()
    found["kernel"] = os.uname().release
    return found


def disk(path: str = "/") -> dict:
    usage = shutil.disk_usage(path)
    return {
        "path": path,
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_percent": round(100 * (usage.total - usage.free) / usage.total, 1) if usage.total else None,
    }


def meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def memory() -> dict:
    info = meminfo()
    total = info.get("MemTotal", 0)
    available = info.get("MemAvailable", info.get("MemFree", 0))
    return {
        "total_bytes": total,
        "available_bytes": available,
        "used_percent": round(100 * (total - available) / total, 1) if total else None,
    }


def load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"1m": one, "5m": five, "15m": fifteen, "cpus": os.cpu_count()}


def service_states() -> dict[str, bool]:
    return {name: services.is_running(name) for name in services.UNITS}


def collect() -> dict:
    return {
        "services": service_states(),
        "versions": versions(),
        "disk": disk("/"),
        "memory": memory(),
        "load": load(),
        "certificates": certificates.report() if certificates else None,
    }


if __name__ == "__main__":
    main(lambda params: collect())
