#!/usr/bin/env python3
"""Which holds the staging must-use plugin has on in a non-production
environment, the due work they hold back, and the latest outgoing HTTP
requests its WordPress made (newest first).

The request log is written by the site's PHP into the environment's logs/
directory, so it is the site's to forge: it is read as the site's user (a link
or anything but a regular file is refused, see safe_fs.read_tail_as), only its
last LOG_TAIL_BYTES, and every line is taken only when it is exactly a record
the plugin writes; anything else is skipped and counted.

Parameters: system_name, root, url, limit (1-200).
"""

import json
import re
from pathlib import Path

import safe_fs
import wp_helper_client
from nodelib import NodeError, main

LOG_NAME = "outgoing-requests.log"
LOG_TAIL_BYTES = 256 * 1024
LINE_MAX_BYTES = 2048
LIMIT_MAX = 200
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)$")
METHOD = re.compile(r"^[A-Z]{1,10}$")
HOST = re.compile(r"^(?=.{0,253}$)[a-z0-9.-]*$")
PATH = re.compile(r"^/[\x21-\x7e]{0,199}$")
REASONS = {"own site", "allow-list", "payment processor", "not on the allow-list"}
KEYS = {"time", "method", "host", "path", "blocked", "reason"}


def parse_record(line: bytes) -> dict | None:
    """One log line as a record, or None when it is not exactly what the plugin writes."""
    if len(line) > LINE_MAX_BYTES:
        return None
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or set(record) != KEYS:
        return None
    checks = (
        isinstance(record["time"], str) and TIME.match(record["time"]),
        isinstance(record["method"], str) and METHOD.match(record["method"]),
        isinstance(record["host"], str) and HOST.match(record["host"]),
        isinstance(record["path"], str) and PATH.match(record["path"]),
        isinstance(record["blocked"], bool),
        record["reason"] in REASONS,
    )
    return record if all(checks) else None


def read_requests(name: str, root: Path, limit: int) -> tuple[list[dict], int]:
    """The newest ``limit`` records, newest first, and how many lines were skipped."""
    try:
        data = safe_fs.read_tail_as(name, root / "logs" / LOG_NAME, LOG_TAIL_BYTES)
    except safe_fs.UnsafePath:
        return [], 1
    lines = data.split(b"\n")
    if len(data) >= LOG_TAIL_BYTES:
        lines = lines[1:]  # begins inside a line
    records, skipped = [], 0
    for line in reversed(lines):
        if not line.strip():
            continue
        record = parse_record(line.strip())
        if record is None:
            skipped += 1
        elif len(records) < limit:
            records.append(record)
    return records, skipped


def staging_holds(params: dict) -> dict:
    name = params["system_name"]
    limit = params.get("limit", 50)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIMIT_MAX:
        raise NodeError("bad_parameters", f"limit must be 1 to {LIMIT_MAX}")
    answer = wp_helper_client.call(name, {"command": "staging-holds", "root": params["root"], "url": params["url"]},
                                   timeout=12)
    requests, skipped = read_requests(name, Path(params["root"]), limit)
    return {"holds": answer.get("holds"), "due": answer.get("due"), "requests": requests, "skipped_lines": skipped}


if __name__ == "__main__":
    main(staging_holds)
