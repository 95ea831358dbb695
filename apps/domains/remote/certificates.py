#!/usr/bin/env python3
"""Certificates on this node: certbot (HTTP-01, webroot) for each custom
domain, their renewal schedule, and what node health reports about them.

Run as a program (by the renewal timer or cron job this module installs), it
renews every certificate due: ``python3 certificates.py`` with no input
(``--force``: every certificate, due or not). The
reload hook node_provision installs in certbot's renewal-hooks/deploy reloads
Nginx after a renewal; the outcome is kept in RENEWAL_STATE for node health.

Certificates are certbot's, in its usual place (/etc/letsencrypt), one per
hostname, named after it, so ``certbot renew`` from any schedule finds them.
"""

import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from nodelib import LIB_DIR, NodeError, clean_text, has_systemd, info, run, write_file

LETSENCRYPT = Path("/etc/letsencrypt")
LIVE = LETSENCRYPT / "live"
RENEWAL = LETSENCRYPT / "renewal"
# Root's alone: the challenge files, served by Nginx for every domain's
# /.well-known/acme-challenge/. No site can write here.
WEBROOT = Path("/var/lib/pressluft/acme")
CA_BUNDLE = Path("/etc/pressluft/acme-ca.pem")
RENEWAL_STATE = Path("/var/lib/pressluft/certificate-renewal.json")
CRON_FILE = Path("/etc/cron.d/pressluft-certificates")
SYSTEMD_DIR = Path("/etc/systemd/system")
UNIT = "pressluft-certificates"
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
CERTBOT_TIMEOUT = 300


def check_hostname(hostname: str) -> str:
    if not isinstance(hostname, str) or not HOSTNAME.match(hostname):
        raise NodeError("bad_parameters", "unexpected hostname")
    return hostname


def certbot_env() -> dict:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    if CA_BUNDLE.exists():
        env["REQUESTS_CA_BUNDLE"] = str(CA_BUNDLE)
    return env


def set_ca_bundle(pem: str) -> None:
    """The CA bundle the ACME server's HTTPS is checked with (empty: the system's CAs)."""
    if pem:
        write_file(CA_BUNDLE, pem, 0o644)
    elif CA_BUNDLE.exists():
        CA_BUNDLE.unlink()


def ensure_webroot() -> None:
    WEBROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(WEBROOT, 0o755)
    os.chown(WEBROOT, 0, 0)


def _tail(text: str, lines: int = 4) -> str:
    return clean_text(" | ".join((text or "").strip().splitlines()[-lines:]), 600)


# certbot runs one at a time on a machine (its lock): another job's, the
# renewal schedule's. Waited for rather than failed on.
CERTBOT_BUSY = "Another instance of Certbot is already running"
BUSY_WAIT_SECONDS = 180


def run_certbot(argv: list[str], timeout: float = CERTBOT_TIMEOUT) -> subprocess.CompletedProcess:
    """certbot with ``argv``, waiting while another certbot holds its lock.
    Raises subprocess.TimeoutExpired; NodeError (retryable) when the lock stays taken."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        done = run(argv, check=False, env=certbot_env(), timeout=timeout)
        if done.returncode == 0 or CERTBOT_BUSY not in (done.stderr or "") + (done.stdout or ""):
            return done
        if time.monotonic() > deadline:
            raise NodeError("certificate_failed", f"another certbot kept running here for {BUSY_WAIT_SECONDS} s",
                            retryable=True)
        time.sleep(0.5)


def issue(hostname: str, acme: dict) -> None:
    """A certificate for ``hostname`` from the ACME server, proved by a file
    under WEBROOT that Nginx serves on port 80. Raises NodeError on refusal."""
    check_hostname(hostname)
    argv = [
        "certbot", "certonly", "--non-interactive", "--agree-tos", "--webroot", "-w", str(WEBROOT),
        "--server", acme["directory"], "--cert-name", hostname, "-d", hostname, "--keep-until-expiring",
        "--no-random-sleep-on-renew", "--key-type", "ecdsa",
    ]
    argv += ["-m", acme["email"]] if acme.get("email") else ["--register-unsafely-without-email"]
    try:
        done = run_certbot(argv)
    except subprocess.TimeoutExpired:
        raise NodeError("certificate_failed", f"certbot did not finish within {CERTBOT_TIMEOUT} s for {hostname}",
                        retryable=True) from None
    if done.returncode != 0:
        raise NodeError("certificate_failed", f"the ACME server gave no certificate for {hostname}: "
                                              + _tail(done.stderr or done.stdout))


def delete(hostname: str) -> bool:
    check_hostname(hostname)
    if not (RENEWAL / f"{hostname}.conf").exists() and not (LIVE / hostname).exists():
        return False
    done = run_certbot(["certbot", "delete", "--non-interactive", "--cert-name", hostname], timeout=120)
    if done.returncode != 0:
        raise NodeError("remote_step_failed", f"certbot could not delete the certificate of {hostname}: "
                                              + _tail(done.stderr or done.stdout))
    return True


def not_after(path: Path) -> str | None:
    """The certificate's expiry as ISO 8601 (UTC), read with openssl."""
    done = run(["openssl", "x509", "-noout", "-enddate", "-in", str(path)], check=False)
    if done.returncode != 0 or "=" not in done.stdout:
        return None
    stamp = done.stdout.strip().split("=", 1)[1]
    moment = datetime.datetime.strptime(stamp, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    return moment.isoformat()


def expiry(hostname: str) -> str | None:
    path = LIVE / check_hostname(hostname) / "cert.pem"
    return not_after(path) if path.exists() else None


def report() -> dict:
    """For node health: each certificate's expiry, and the last renewal run."""
    found = {}
    if LIVE.is_dir():
        for entry in sorted(LIVE.iterdir()):
            cert = entry / "cert.pem"
            if entry.is_dir() and cert.exists():
                found[entry.name] = not_after(cert)
    try:
        renewal = json.loads(RENEWAL_STATE.read_text())
    except (OSError, ValueError):
        renewal = None
    return {"certificates": found, "renewal": renewal}


# --- renewal -----------------------------------------------------------------

def ensure_schedule() -> bool:
    """Twice a day: a systemd timer where there is systemd, a cron job otherwise."""
    program = f"/usr/bin/python3 {LIB_DIR / 'certificates.py'}"
    if has_systemd():
        changed = write_file(SYSTEMD_DIR / f"{UNIT}.service", (
            "# Managed by Pressluft; local edits are overwritten.\n[Unit]\nDescription=Renew Pressluft's certificates\n\n"
            f"[Service]\nType=oneshot\nExecStart={program}\n"))
        changed |= write_file(SYSTEMD_DIR / f"{UNIT}.timer", (
            "# Managed by Pressluft; local edits are overwritten.\n[Unit]\nDescription=Renew Pressluft's certificates\n\n"
            "[Timer]\nOnCalendar=*-*-* 03,15:17:00\nRandomizedDelaySec=1h\nPersistent=true\n\n"
            "[Install]\nWantedBy=timers.target\n"))
        if changed:
            run(["systemctl", "daemon-reload"])
            run(["systemctl", "enable", "--now", f"{UNIT}.timer"])
        return changed
    return write_file(CRON_FILE, (
        "# Managed by Pressluft; local edits are overwritten.\n"
        "SHELL=/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"17 3,15 * * * root {program} >/dev/null 2>&1\n"))


def renew(force: bool = False) -> int:
    started = time.time()
    argv = ["certbot", "renew", "--non-interactive", "--no-random-sleep-on-renew"]
    if force:
        argv.append("--force-renewal")
    try:
        done = subprocess.run(argv,
                              capture_output=True, text=True, env=certbot_env(), timeout=1800)
        ok, detail = done.returncode == 0, _tail(done.stderr or done.stdout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, detail = False, clean_text(str(exc), 600)
    RENEWAL_STATE.parent.mkdir(parents=True, exist_ok=True)
    write_file(RENEWAL_STATE, json.dumps({"ran_at": started, "ok": ok, "detail": detail}, sort_keys=True) + "\n",
               0o644)
    info(f"renewal {'succeeded' if ok else 'failed'}: {detail}")
    return 0 if ok else 1


if __name__ == "__main__":
    # --force: renew every certificate now, due or not (an operator's choice).
    sys.exit(renew(force="--force" in sys.argv[1:]))
