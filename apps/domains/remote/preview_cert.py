#!/usr/bin/env python3
"""The preview domain's wildcard certificate on this node: ``*.<domain>``,
proved by ACME DNS-01 through a certbot DNS plugin (RFC 2136 dynamic updates,
or another provider's plugin), kept by certbot in its usual place under the
name ``_wildcard.<domain>`` and renewed by the node's renewal schedule
(certificates.py) like every other certificate here.

Parameters (JSON on stdin), all produced by the panel:
  domain               the preview domain
  certificate_name     "_wildcard.<domain>"
  acme                 {"directory", "ca_bundle" (PEM or ""), "email"}
  provider             {"name", "authenticator", "package", "credentials_option", "propagation_option"}
  credentials          the plugin's credentials file as {key: value}
  propagation_seconds  how long certbot waits after the DNS update, or null (the plugin's default)
  force                ask for a new certificate even when a valid one is here

The credentials file is written root-only (0600) to CREDENTIALS_DIR; certbot
reads it now and at every renewal. Nothing of it is ever on a command line.

Result: {"issued": bool, "not_after": ISO 8601, "certificate_name": ...}.
"""

import os
import re
import subprocess
from pathlib import Path

import certificates
from nodelib import NodeError, info, main, run, step, write_file

CREDENTIALS_DIR = Path("/etc/pressluft/dns01")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
AUTHENTICATOR = re.compile(r"^dns-[a-z0-9-]{2,40}$")
PACKAGE = re.compile(r"^python3-certbot-dns-[a-z0-9-]{2,40}$")
INI_KEY = re.compile(r"^dns_[a-z0-9_]{1,60}$")


def check(params: dict) -> dict:
    domain = certificates.check_hostname(params.get("domain"))
    if params.get("certificate_name") != f"_wildcard.{domain}":
        raise NodeError("bad_parameters", "unexpected certificate name")
    provider = params.get("provider") or {}
    name, authenticator = provider.get("name"), provider.get("authenticator")
    if not (isinstance(name, str) and NAME.match(name) and isinstance(authenticator, str)
            and AUTHENTICATOR.match(authenticator) and isinstance(provider.get("package"), str)
            and PACKAGE.match(provider["package"])
            and provider.get("credentials_option") == f"--{authenticator}-credentials"
            and provider.get("propagation_option") == f"--{authenticator}-propagation-seconds"):
        raise NodeError("bad_parameters", "unexpected DNS provider")
    credentials = params.get("credentials")
    if not isinstance(credentials, dict) or not credentials:
        raise NodeError("bad_parameters", "no DNS provider credentials")
    for key, value in credentials.items():
        # One line of printable text each: the file is key = value lines.
        if not (isinstance(key, str) and INI_KEY.match(key) and isinstance(value, str)
                and value and value.isprintable() and value.strip() == value and len(value) <= 4096):
            raise NodeError("bad_parameters", "unexpected DNS provider credentials")
    seconds = params.get("propagation_seconds")
    if seconds is not None and not (isinstance(seconds, int) and 0 <= seconds <= 3600):
        raise NodeError("bad_parameters", "unexpected propagation wait")
    acme = params.get("acme") or {}
    if not (isinstance(acme.get("directory"), str) and acme["directory"].startswith(("https://", "http://"))):
        raise NodeError("bad_parameters", "unexpected ACME directory")
    return {"domain": domain, "name": params["certificate_name"], "provider": provider,
            "credentials": credentials, "seconds": seconds, "acme": acme, "force": params.get("force") is True}


def ensure_plugin(package: str) -> None:
    done = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    if done.stdout.strip() == "install ok installed":
        return
    info(f"installing {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
    try:
        run(apt + ["install", "-y", "--no-install-recommends", package], env=env, timeout=900)
    except subprocess.CalledProcessError:
        try:
            run(apt + ["update"], env=env, timeout=900)
            run(apt + ["install", "-y", "--no-install-recommends", package], env=env, timeout=900)
        except subprocess.CalledProcessError as exc:
            tail = " | ".join((exc.stderr or exc.stdout or "").strip().splitlines()[-3:])
            raise NodeError("remote_step_failed", f"apt-get could not install {package}: {tail}",
                            retryable=True) from None


def write_credentials(provider: str, credentials: dict) -> Path:
    """Root's alone: the directory 0700, the file 0600, replaced atomically."""
    CREDENTIALS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    if CREDENTIALS_DIR.is_symlink() or not CREDENTIALS_DIR.is_dir():
        raise NodeError("remote_step_failed", f"{CREDENTIALS_DIR} is not a directory")
    os.chown(CREDENTIALS_DIR, 0, 0)
    os.chmod(CREDENTIALS_DIR, 0o700)
    path = CREDENTIALS_DIR / f"{provider}.ini"
    content = "# Written by Pressluft: the DNS-01 credentials certbot uses for the preview certificate.\n"
    content += "".join(f"{key} = {value}\n" for key, value in sorted(credentials.items()))
    if write_file(path, content, 0o600):
        info(f"{path} written (0600)")
    return path


def current_authenticator(name: str) -> str | None:
    try:
        text = (certificates.RENEWAL / f"{name}.conf").read_text()
    except OSError:
        return None
    found = re.search(r"^authenticator\s*=\s*(\S+)\s*$", text, re.MULTILINE)
    return found.group(1) if found else None


def certbot(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return certificates.run_certbot(argv)
    except subprocess.TimeoutExpired:
        raise NodeError("certificate_failed", f"certbot did not finish within {certificates.CERTBOT_TIMEOUT} s",
                        retryable=True) from None


def issue(params: dict) -> dict:
    wanted = check(params)
    domain, name, provider = wanted["domain"], wanted["name"], wanted["provider"]

    step(f"DNS plugin {provider['authenticator']} ({provider['package']})")
    ensure_plugin(provider["package"])
    credentials_file = write_credentials(provider["name"], wanted["credentials"])
    certificates.set_ca_bundle(wanted["acme"].get("ca_bundle") or "")

    present = certificates.LIVE / name / "cert.pem"
    switched = present.exists() and current_authenticator(name) != provider["authenticator"]
    issued = False
    if wanted["force"] or switched or not present.exists():
        step(f"certificate *.{domain} from {wanted['acme']['directory']} (DNS-01, {provider['name']})")
        argv = [
            "certbot", "certonly", "--non-interactive", "--agree-tos",
            "--authenticator", provider["authenticator"], provider["credentials_option"], str(credentials_file),
            "--server", wanted["acme"]["directory"], "--cert-name", name, "-d", f"*.{domain}",
            "--key-type", "ecdsa", "--no-random-sleep-on-renew",
        ]
        argv += ["--force-renewal"] if (wanted["force"] or switched) else ["--keep-until-expiring"]
        if wanted["seconds"] is not None:
            argv += [provider["propagation_option"], str(wanted["seconds"])]
        argv += ["-m", wanted["acme"]["email"]] if wanted["acme"].get("email") else ["--register-unsafely-without-email"]
        done = certbot(argv)
        if done.returncode != 0:
            raise NodeError("certificate_failed", f"the ACME server gave no certificate for *.{domain}: "
                                                  + certificates._tail(done.stderr or done.stdout))
        issued = True
    else:
        info(f"*.{domain} is here already ({name}); certbot renews it with {credentials_file}")
    if certificates.ensure_schedule():
        info("certificate renewal scheduled (twice a day)")
    not_after = certificates.not_after(present)
    info(f"*.{domain} valid until {not_after}")
    return {"issued": issued, "not_after": not_after, "certificate_name": name}


if __name__ == "__main__":
    main(issue)
