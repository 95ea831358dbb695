#!/usr/bin/env python3
"""Point an environment's ``current`` back to an earlier release (the opcache told
through its pool: php_opcache).
Never loads WordPress: a release with a fatal error must still roll back.
Parameters: system_name, root, release (the release to return to)."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import php_opcache
import safe_fs
import services
import site_cache
from env_setup import NAME, link_current
from nodelib import NodeError, main, step

RELEASE = re.compile(r"^[0-9]{8}T[0-9]{6}([0-9]{6})?Z$")


def rollback(params: dict) -> dict:
    root = Path(params["root"])
    release = params["release"]
    if not NAME.match(params["system_name"]):
        raise NodeError("bad_parameters", "unexpected environment system name")
    if safe_fs.ensure_layout(root, params["system_name"]):
        services.reload("nginx")
    if not RELEASE.match(release) or not (root / "releases" / release / "wp-load.php").exists():
        raise NodeError("rollback_failed", f"release {release} is not on the node")
    safe_fs.check_release(root, release)
    step(f"switch back to release {release}")
    link_current(root, release)
    # New real paths, new opcache keys: no PHP-FPM reload (php_opcache.py says why).
    php_opcache.forget_stale_code(params["system_name"], root, release)
    step("purge the page cache and the object cache")
    cache = params.get("cache") or {"hostnames": [urlsplit(params["url"]).hostname], "key_prefix": None}
    site_cache.purge_after_switch(cache["hostnames"], cache["key_prefix"])
    return {"release": release}


if __name__ == "__main__":
    main(rollback)
