#!/usr/bin/env python3
"""Is WordPress installed in this environment, and does it reach its database?
With ``since`` (a Unix time), also: how many PHP fatal errors its error log
recorded after that moment. Read-only. Parameters: system_name, root, url, since."""

import math
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import safe_fs
import wp_helper_client
from nodelib import NodeError, clean_text, main

# PHP's error log lines: "[25-Nov-2026 21:40:00 UTC] PHP Fatal error:  ..."
LOG_LINE = re.compile(r"^\[(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}:\d{2}) ([A-Za-z/_+-]+)\] PHP Fatal error:\s*(.*)$")
TAIL_BYTES = 2 * 1024 * 1024


def fatal_errors_since(name: str, log: Path, since: float) -> list[str]:
    # The log is the site's to write (and to replace with a link): read as the site.
    lines = safe_fs.read_tail_as(name, log, TAIL_BYTES).decode(errors="replace").splitlines()
    found = []
    for line in lines:
        match = LOG_LINE.match(line)
        if not match:
            continue
        # The pools log in UTC (PHP's default date.timezone on these nodes).
        when = datetime.strptime(match.group(1), "%d-%b-%Y %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        # Log times have whole seconds: a fatal in the second of the switch counts.
        if when >= math.floor(since):
            # The site writes this log: its text is shown to operators only as one bounded, escaped line.
            found.append(clean_text(match.group(3))[:300])
    return found


def check(params: dict) -> dict:
    if not wp_helper_client.NAME.match(params["system_name"]):
        raise NodeError("bad_parameters", "unexpected environment system name")
    # WordPress is loaded through ``current``: never one that leads out of the releases.
    safe_fs.current_release(Path(params["root"]))
    base = {"root": params["root"], "url": params["url"]}
    report = {"installed": False, "database": False, "error": ""}
    name = params["system_name"]
    # One WordPress load answers both (the database first: WordPress does not load without it);
    # the log is read beside it (a CLI load never writes the pool's error log).
    with ThreadPoolExecutor(2) as pool:
        health = pool.submit(wp_helper_client.call, name, dict(base, command="health"), 20)
        fatal = (pool.submit(fatal_errors_since, name, Path(params["root"]) / "logs" / "php-error.log",
                             float(params["since"])) if params.get("since") is not None else None)
        try:
            answer = health.result()
            report["database"] = bool(answer.get("database"))
            report["installed"] = bool(answer.get("installed"))
        except NodeError as exc:
            report["error"] = exc.message
        if fatal is not None:
            report["fatal_errors"] = fatal.result()
    return report


if __name__ == "__main__":
    main(check)
