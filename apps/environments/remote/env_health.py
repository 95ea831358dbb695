#!/usr/bin/env python3
"""Is WordPress installed in this environment, and does it reach its database?
Read-only. Parameters: system_name, root, url."""

import wp_helper_client
from nodelib import NodeError, main


def check(params: dict) -> dict:
    base = {"root": params["root"], "url": params["url"]}
    report = {"installed": False, "database": False, "error": ""}
    try:
        report["database"] = bool(wp_helper_client.call(params["system_name"], dict(base, command="db-check"), 20).get("database"))
        report["installed"] = bool(wp_helper_client.call(params["system_name"], dict(base, command="is-installed"), 20).get("installed"))
    except NodeError as exc:
        report["error"] = exc.message
    return report


if __name__ == "__main__":
    main(check)
