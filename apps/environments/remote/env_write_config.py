#!/usr/bin/env python3
"""Write an environment's wp-config.php as the panel rendered it (e.g. after
its outgoing allow-list changed): root's, readable by the site, never
writable by it, replaced atomically.

Parameters: system_name, root, url, wp_config.
"""

from pathlib import Path

import env_setup
import php_opcache
import safe_fs
from nodelib import NodeError, main


def write_config(params: dict) -> dict:
    name = params["system_name"]
    if not env_setup.NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    root = Path(params["root"])
    # The site could have planted a link where shared/ should be: checked, not followed.
    safe_fs.ensure_layout(root, name)
    changed = env_setup.write_wp_config(root, name, params["wp_config"])
    if changed:
        # PHP's opcache may hold the old file for a moment (opcache.revalidate_freq): it forgets it now,
        # through this environment's pool, without reloading PHP-FPM for every site.
        php_opcache.forget_stale_code(name, root, safe_fs.current_release(root))
    return {"changed": bool(changed)}


if __name__ == "__main__":
    main(write_config)
