#!/usr/bin/env python3
"""Remove one environment from this node: server block, PHP-FPM pool,
database and its user, Redis user and keys, files, Linux user. Idempotent:
what is gone already is skipped. Parameters: system_name, root, paths {pool,
vhost, domains_vhost}, redis {key_prefix}, certificates (the hostnames of its
custom domains, whose certificates go too)."""

import grp
import pwd
import re
import shutil
from pathlib import Path

import certificates
import redis_acl
import services
from env_deploy import KNOWN_HOSTS_DIR
from nodelib import NodeError, main, remove_config, run, step

NAME = re.compile(r"^pl[0-9a-f]{12}$")


def teardown(params: dict) -> dict:
    name = params["system_name"]
    if not NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    root = Path(params["root"])
    removed = []

    step("Nginx server block")
    if remove_config(params["paths"]["vhost"], ["/usr/sbin/nginx", "-t", "-q"]):
        services.reload("nginx")
        removed.append("vhost")

    domains_vhost = params["paths"].get("domains_vhost")
    if domains_vhost:
        step("Nginx server block of its domains")
        if remove_config(domains_vhost, ["/usr/sbin/nginx", "-t", "-q"]):
            services.reload("nginx")
            removed.append("domains vhost")
    for hostname in params.get("certificates") or []:
        step(f"certificate of {hostname}")
        if certificates.delete(hostname):
            removed.append(f"certificate {hostname}")

    step("PHP-FPM pool")
    if remove_config(params["paths"]["pool"], ["/usr/sbin/php-fpm8.2", "-t"]):
        services.reload("php-fpm")
        removed.append("pool")

    step("database and database user")
    services.ensure_running("mariadb")
    run(["mariadb", "--batch"], input=f"DROP DATABASE IF EXISTS `{name}`;\nDROP USER IF EXISTS '{name}'@'localhost';\n")
    removed.append("database")

    step("Redis user and keys")
    if redis_acl.remove_user(name, params["redis"]["key_prefix"]):
        removed.append("redis user")

    step("files")
    if root.exists():
        shutil.rmtree(root)
        removed.append("files")

    # The repository host key pinned for this environment's git deploys.
    (KNOWN_HOSTS_DIR / name).unlink(missing_ok=True)

    step("Linux user")
    try:
        pwd.getpwnam(name)
    except KeyError:
        pass
    else:
        # The pool is gone, but give its last PHP processes a moment to exit.
        run(["pkill", "-KILL", "-u", name], check=False)
        run(["userdel", name])
        removed.append("user")
    # userdel keeps a primary group that has other members (www-data joins
    # each site's group): without this every deleted environment would keep
    # a system group id, and a busy node would run out of them.
    try:
        grp.getgrnam(name)
    except KeyError:
        pass
    else:
        run(["groupdel", name])
        removed.append("group")
    return {"removed": removed}


if __name__ == "__main__":
    main(teardown)
