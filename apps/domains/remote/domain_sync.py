#!/usr/bin/env python3
"""Bring an environment's custom domains on this node to what the panel says:
its domains server block, certificates for new hostnames, the site's URL
(wp-config.php and the database) when the primary domain changed, caches
purged, certificates of removed hostnames deleted.

Parameters (JSON on stdin), all produced by the panel:
  system_name, root     the environment (as env_setup.py)
  url                   its canonical URL once this is done
  vhost_path            where the environment's domains server block goes
  vhost_before_issue    the block while certificates are asked for (challenge
                        served on port 80 for the new hostnames); or null
  vhost                 the block once they are issued ("" removes the file)
  issue                 hostnames to get a certificate for (HTTP-01, webroot)
  acme                  {"directory", "ca_bundle" (PEM or ""), "email"}
  listen_address        where Nginx listens ("" = everywhere): the challenge
                        is checked there before certbot asks the ACME server
  wp_config             the rewritten wp-config.php when the site's URL changes, or null
  rewrite               {"old_url", "new_url", "db_password"} or null
  purge_hostnames       hosts whose cached pages go
  redis_key_prefix      the environment's object cache keys, which go too
  delete_certificates   hostnames whose certificates go

Result: {"issued": {host: not_after}, "failed": {host: message},
         "rewrite": {...} or null, "purged": N, "deleted": [...]}.
``vhost_before_issue`` is installed before certbot runs only when Nginx does
not answer the challenge path on the new hostnames yet (the node's default
server answers it for names no server block serves). When a certificate is
refused, the program stops there and reports it in "failed": the panel
renders the block again without it, and that run installs it.
"""

import http.client
import os
import re
import secrets
import time
from pathlib import Path

import certificates
import env_clone
import env_setup
import page_cache
import redis_acl
import services
from nodelib import NodeError, info, install_config, main, remove_config, step

VHOST_DIR = "/etc/nginx/sites-enabled/"
PROBE_TIMEOUT = 15.0


def check_vhost_path(path: str) -> Path:
    if not (isinstance(path, str) and path.startswith(VHOST_DIR + "pressluft-") and path.endswith("-domains.conf")
            and "/" not in path[len(VHOST_DIR):]):
        raise NodeError("bad_parameters", "unexpected server block path")
    return Path(path)


def install_vhost(path: Path, content: str) -> bool:
    if content:
        changed = install_config(path, content, env_setup.NGINX_TEST)
    else:
        changed = remove_config(path, env_setup.NGINX_TEST)
    if changed:
        services.reload("nginx")
    return changed


def serve_challenges(hostnames: list[str], listen_address: str, install) -> bool:
    """Make Nginx serve the challenge path (root's ACME webroot) on each
    hostname, checked with a probe file there. A new hostname needs no server
    block for it: the node's default server answers challenges for names no
    block serves (nginx-pressluft-default-server.conf), so ``install`` (a
    server block, and its reload) is called only when the path is not served
    yet. Returns whether it was called."""
    name = f"pressluft-probe-{secrets.token_hex(8)}"
    probe = certificates.WEBROOT / ".well-known" / "acme-challenge" / name
    probe.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    probe.write_text(name)
    try:
        def served(host: str) -> bool:
            return _get(host, f"/.well-known/acme-challenge/{name}", listen_address) == (200, name.encode())

        if all(served(host) for host in hostnames):
            return False
        install()
        # Nginx reloads in the background: ask until the new block answers.
        deadline = time.monotonic() + PROBE_TIMEOUT
        pending = list(hostnames)
        while pending:
            host = pending[0]
            if served(host):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise NodeError("service_failed", f"Nginx does not serve the challenge path for {host} "
                                                  f"within {int(PROBE_TIMEOUT)} s", retryable=True)
            time.sleep(0.01)
        return True
    finally:
        os.unlink(probe)


def _get(host: str, path: str, listen_address: str) -> tuple[int, bytes] | None:
    try:
        connection = http.client.HTTPConnection(listen_address or "127.0.0.1", 80, timeout=2)
        connection.request("GET", path, headers={"Host": host})
        answer = connection.getresponse()
        result = answer.status, answer.read()
        connection.close()
        return result
    except OSError:
        return None


def wait_for_config(content: str, listen_address: str) -> None:
    """After a reload, until Nginx answers with this file's marker (three times
    in a row: old workers may still take a connection or two)."""
    marker = re.search(r'pressluft-config \{ default_type text/plain; return 200 "([0-9a-f]+)"', content)
    host = re.search(r"server_name (\S+);", content)
    if not marker or not host:
        return
    deadline = time.monotonic() + PROBE_TIMEOUT
    in_a_row = 0
    while in_a_row < 3:
        answer = _get(host.group(1), "/.well-known/pressluft-config", listen_address)
        in_a_row = in_a_row + 1 if answer == (200, marker.group(1).encode()) else 0
        if in_a_row < 3:
            if time.monotonic() > deadline:
                raise NodeError("service_failed", f"Nginx does not serve the new server block within "
                                                  f"{int(PROBE_TIMEOUT)} s", retryable=True)
            time.sleep(0.02)


def sync(params: dict) -> dict:
    name = env_clone.check_name(params["system_name"])
    root = Path(params["root"])
    vhost_path = check_vhost_path(params["vhost_path"])
    issue = [certificates.check_hostname(host) for host in params.get("issue") or []]
    result: dict = {"issued": {}, "failed": {}, "rewrite": None, "purged": 0, "deleted": []}

    if issue:
        step("ACME challenge path for " + ", ".join(issue))
        certificates.ensure_webroot()
        certificates.set_ca_bundle(params["acme"].get("ca_bundle") or "")
        if not serve_challenges(issue, params.get("listen_address") or "",
                                lambda: install_vhost(vhost_path, params["vhost_before_issue"])):
            info("Nginx serves the challenge path already: no reload before the certificate")
        for host in issue:
            step(f"certificate for {host} from {params['acme']['directory']}")
            try:
                certificates.issue(host, params["acme"])
            except NodeError as exc:
                if exc.retryable:
                    raise
                info(exc.message)
                result["failed"][host] = exc.message
                continue
            result["issued"][host] = certificates.expiry(host)
            info(f"certificate for {host} valid until {result['issued'][host]}")
        if result["failed"]:
            return result
        if certificates.ensure_schedule():
            info("certificate renewal scheduled (twice a day)")

    step("Nginx server block of the domains")
    reloaded = install_vhost(vhost_path, params["vhost"])
    if reloaded:
        info(f"{vhost_path} {'written' if params['vhost'] else 'removed'}; Nginx reloaded")

    if params.get("wp_config"):
        step("wp-config.php with the new site URL")
        # No PHP-FPM reload: OPcache checks the file's time within seconds, and
        # until then the old URL (the preview's) is still a working one.
        env_setup.write_wp_config(root, name, params["wp_config"])

    rewrite = params.get("rewrite")
    if rewrite:
        step(f"rewrite {rewrite['old_url']} to {rewrite['new_url']}")
        result["rewrite"] = env_clone.rewrite_urls(name, rewrite["db_password"], rewrite["old_url"], rewrite["new_url"])

    hosts = [certificates.check_hostname(host) for host in params.get("purge_hostnames") or []]
    if hosts:
        step("purge the caches")
        result["purged"] = page_cache.purge(hosts)
        info(f"{result['purged']} cached page(s) removed")
        # The object cache: this environment's Redis keys only (its prefix), as teardown removes them.
        if params.get("redis_key_prefix") and redis_acl.delete_keys(params["redis_key_prefix"]):
            info(f"Redis keys under {params['redis_key_prefix']} removed")

    if reloaded:
        # Nginx reloads in the background while the steps above run; the job
        # ends only once it serves the new block.
        wait_for_config(params["vhost"], params.get("listen_address") or "")

    for host in params.get("delete_certificates") or []:
        step(f"delete the certificate of {host}")
        if certificates.delete(host):
            result["deleted"].append(host)
    return result


if __name__ == "__main__":
    main(sync)
