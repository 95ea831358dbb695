"""Purging one environment's entries from the node's shared FastCGI cache.

Nginx names cache files by a hash of the key, but writes the key itself
("KEY: <scheme><method><host><uri>") into each file's header: the entries of
an environment are the files whose key carries one of its host names.
"""

import json
import os
from pathlib import Path

NODE_FILE = Path("/etc/pressluft/node.json")
DEFAULT_CACHE_DIR = "/var/cache/nginx/pressluft"
HEADER_BYTES = 4096


def cache_dir() -> Path:
    try:
        return Path(json.loads(NODE_FILE.read_text())["fastcgi_cache_dir"])
    except (OSError, ValueError, KeyError):
        return Path(DEFAULT_CACHE_DIR)


def purge(hostnames: list[str]) -> int:
    """Delete the cached pages of these host names; returns how many were removed."""
    markers = [f"GET{host}/".encode() for host in hostnames] + [f"HEAD{host}/".encode() for host in hostnames]
    removed = 0
    for directory, _subdirs, files in os.walk(cache_dir()):
        for name in files:
            path = Path(directory) / name
            try:
                with open(path, "rb") as handle:
                    header = handle.read(HEADER_BYTES)
            except OSError:
                continue
            start = header.find(b"\nKEY: ")
            if start < 0:
                continue
            key = header[start + 6 : header.find(b"\n", start + 6)]
            if any(marker in key for marker in markers):
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
