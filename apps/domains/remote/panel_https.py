#!/usr/bin/env python3
"""Serve the panel itself over HTTPS on its control plane domain, on the
machine that runs it: a server block proxying to the panel's web server on
loopback, a certificate by HTTP-01 exactly as a custom domain gets one
(certificates.py), HTTP answering 301 to HTTPS. With no hostname, the block
and the certificate go.

Parameters (JSON on stdin), all produced by the panel:
  hostname            the control plane domain, or "" to stop serving one
  vhost_before_issue  the block while the certificate is asked for (port 80 only)
  vhost               the block once it is issued
  acme                {"directory", "ca_bundle" (PEM or ""), "email"}
  listen_address      where Nginx listens ("" = everywhere)

What this node serves for the panel is remembered in STATE, so a changed or
cleared domain has its old block and certificate removed.

Result: {"hostname": ..., "expires_at": ISO 8601 or null, "deleted": [...]}.
"""

import json
import re
from pathlib import Path

import certificates
import domain_sync
import env_setup
import services
from nodelib import NodeError, info, install_config, main, remove_config, step, write_file

VHOST = Path("/etc/nginx/sites-enabled/pressluft-panel.conf")
STATE = Path("/var/lib/pressluft/panel-https.json")
# The block carries the panel's proxy token: root's alone (Nginx's master reads it as root).
VHOST_MODE = 0o600
UPSTREAM = re.compile(r"proxy_pass http://(127\.0\.0\.1|\[::1\]):[0-9]{1,5};")


def previous_hostname() -> str:
    try:
        hostname = json.loads(STATE.read_text()).get("hostname") or ""
    except (OSError, ValueError, AttributeError):
        return ""
    return certificates.check_hostname(hostname) if hostname else ""


def check_vhost(content, hostname: str, *, proxied: bool) -> str:
    """The panel rendered it; still, it names only this hostname and, once it
    proxies, only a loopback address."""
    if not isinstance(content, str) or not content:
        raise NodeError("bad_parameters", "missing server block")
    names = set(re.findall(r"server_name (\S+);", content))
    if names != {hostname}:
        raise NodeError("bad_parameters", "the server block names another host")
    upstreams = re.findall(r"proxy_pass [^;]*;", content)
    if proxied and (len(upstreams) != 1 or not UPSTREAM.fullmatch(upstreams[0])):
        raise NodeError("bad_parameters", "the panel's upstream must be a loopback address")
    if not proxied and upstreams:
        raise NodeError("bad_parameters", "the block before issuance proxies nothing")
    return content


def install(content: str) -> None:
    if install_config(VHOST, content, env_setup.NGINX_TEST, mode=VHOST_MODE):
        services.reload("nginx")


def uninstall() -> bool:
    if remove_config(VHOST, env_setup.NGINX_TEST):
        services.reload("nginx")
        return True
    return False


def configure(params: dict) -> dict:
    hostname = params.get("hostname") or ""
    if hostname:
        certificates.check_hostname(hostname)
    previous = previous_hostname()
    listen_address = params.get("listen_address") or ""
    result = {"hostname": hostname, "expires_at": None, "deleted": []}

    if hostname:
        before_issue = check_vhost(params.get("vhost_before_issue"), hostname, proxied=False)
        vhost = check_vhost(params.get("vhost"), hostname, proxied=True)
        earlier = VHOST.read_text() if VHOST.exists() else None
        step(f"ACME challenge path for {hostname}")
        certificates.ensure_webroot()
        certificates.set_ca_bundle(params["acme"].get("ca_bundle") or "")
        if previous != hostname or earlier is None:
            domain_sync.serve_challenges([hostname], listen_address, lambda: install(before_issue))
        step(f"certificate for {hostname} from {params['acme']['directory']}")
        try:
            certificates.issue(hostname, params["acme"])
        except NodeError:
            # Back to what was served before this run (nothing, or the old domain's block).
            if earlier is None:
                uninstall()
            else:
                install(earlier)
            raise
        result["expires_at"] = certificates.expiry(hostname)
        info(f"certificate for {hostname} valid until {result['expires_at']}")
        if certificates.ensure_schedule():
            info("certificate renewal scheduled (twice a day)")
        step(f"Nginx server block of the panel on {hostname}")
        install(vhost)
        domain_sync.wait_for_config(vhost, listen_address)
        write_file(STATE, json.dumps({"hostname": hostname}) + "\n", 0o644)
        info(f"{VHOST} written; the panel answers on https://{hostname}")
    else:
        step("remove the panel's server block")
        if uninstall():
            info(f"{VHOST} removed; Nginx reloaded")
        if STATE.exists():
            STATE.unlink()

    if previous and previous != hostname:
        step(f"delete the certificate of {previous}")
        if certificates.delete(previous):
            result["deleted"].append(previous)
    return result


if __name__ == "__main__":
    main(configure)
