#!/usr/bin/env python3
"""Turn an environment's caches on or off: its Nginx server block rendered
with or without the FastCGI page cache (validated with nginx -t, installed
atomically, the old one kept if refused), and the Redis object cache drop-in
installed or removed. Then everything it had cached is purged, so a cache
turned on again never serves what was stored before it was turned off.

Parameters: system_name, root, url, files {vhost}, paths {vhost},
object_cache (bool), cache {hostnames, key_prefix}.
"""

from pathlib import Path

import php_opcache
import safe_fs
import services
import site_cache
from env_setup import NAME, NGINX_TEST
from nodelib import NodeError, install_config, main, step


def toggle(params: dict) -> dict:
    name = params["system_name"]
    if not NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    root = Path(params["root"])
    changed = []
    if safe_fs.ensure_layout(root, name):
        services.reload("nginx")

    step("Nginx server block")
    if install_config(params["paths"]["vhost"], params["files"]["vhost"], NGINX_TEST):
        changed.append("vhost")
        # Done only once Nginx answers with it: whoever asked may look at once.
        services.reload_nginx_and_wait()
    else:
        services.ensure_running("nginx")

    enabled = bool(params["object_cache"])
    step("Redis object cache " + ("on: drop-in installed" if enabled else "off: drop-in removed"))
    if site_cache.apply_object_cache(root, name, enabled):
        changed.append("object cache")
        # shared/object-cache.php keeps its real path: the opcache must not run its previous copy.
        php_opcache.forget_stale_code(name, root, safe_fs.current_release(root))

    step("purge the environment's caches")
    purged = site_cache.purge(params["cache"]["hostnames"], params["cache"]["key_prefix"])
    return {"changed": changed, **purged}


if __name__ == "__main__":
    main(toggle)
