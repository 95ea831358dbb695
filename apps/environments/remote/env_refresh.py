#!/usr/bin/env python3
"""Refresh a staging or clone environment from its site's production: the
tables production's promotion preset protects (posts, comments, orders...)
and the uploads are copied from production, every production URL in the
environment's database is rewritten to its own; its code, settings and every
other table stay. Production is measured first (env_checksums.py): that is
the environment's new drift baseline, returned to the panel.

Measured before anything is copied, for the reason env_create's baseline is
(docs/promotion.md): a production change made meanwhile shows as drift later
instead of going unseen.

A re-run copies again; every step replaces what an earlier attempt left
(tables are dropped and re-created by the dump, the uploads emptied first).

Parameters (JSON on stdin), all produced by the panel:
  system_name, root, url, db_password, redis     the environment refreshed
  source {"system_name", "root", "url", "db_password"}   its production
  preset   the environment's promotion preset
"""

from pathlib import Path

import env_checksums
import env_clone
import promotion_presets
import redis_acl
import safe_fs
import services
from nodelib import NodeError, info, main, run, step


def production_tables(database: str) -> list[str]:
    """The production database's table names, listed by root (names only: printed as hex)."""
    services.ensure_running("mariadb")
    listed = run(["mariadb", "--batch", "--skip-column-names", "-e",
                  "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES "
                  f"WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE'"]).stdout.split()
    return [env_checksums.from_hex(value) for value in listed]


def refresh(params: dict) -> dict:
    name = env_clone.check_name(params["system_name"])
    source = params["source"]
    source_name = env_clone.check_name(source["system_name"])
    if source_name == name:
        raise NodeError("bad_parameters", "an environment cannot be refreshed from itself")
    preset = params["preset"]
    if preset not in promotion_presets.preset_names():
        raise NodeError("bad_parameters", f"unknown promotion preset {preset!r}")
    root, source_root = Path(params["root"]), Path(source["root"])

    step("directories")
    # Both environments' directories checked: the site could have planted links in either.
    safe_fs.ensure_layout(root, name)
    safe_fs.ensure_layout(source_root, source_name)

    baseline = env_checksums.checksums({"system_name": source_name, "root": str(source_root),
                                        "db_password": source["db_password"]})

    tables = promotion_presets.protected_tables(production_tables(source_name), env_clone.TABLE_PREFIX, preset)
    step(f"copy {len(tables)} protected table(s) of {source_name} ({preset})")
    if tables:
        info(", ".join(tables))
        env_clone.copy_database(source_name, name, params["db_password"], tables=tables)

    step(f"copy the uploads of {source_name}")
    env_clone.copy_uploads(source_root, source_name, root, name)

    step(f"rewrite {source['url']} to {params['url']}")
    rewrite = env_clone.rewrite_urls(name, params["db_password"], source["url"], params["url"])

    # The copied rows were written underneath any object cache: start it empty.
    step("Redis object cache")
    redis_acl.delete_keys(params["redis"]["key_prefix"])
    return {"baseline": baseline, "tables": tables, "url_rewrite": rewrite}


if __name__ == "__main__":
    main(refresh)
