#!/usr/bin/env python3
"""Purge one environment's caches: its FastCGI page cache entries (by its
host names) and its Redis keys (SCAN + UNLINK under its prefix; other
environments' keys stay). Parameters: system_name, cache {hostnames, key_prefix}."""

import site_cache
from env_setup import NAME
from nodelib import NodeError, main, step


def purge(params: dict) -> dict:
    if not NAME.match(params["system_name"]):
        raise NodeError("bad_parameters", "unexpected environment system name")
    step("purge the page cache and the Redis object cache")
    return site_cache.purge(params["cache"]["hostnames"], params["cache"]["key_prefix"])


if __name__ == "__main__":
    main(purge)
