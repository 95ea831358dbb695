"""Calling pressluft-wp.php (the WordPress helper) as an environment's user."""

import json
import re

from nodelib import LIB_DIR, NodeError, run

NAME = re.compile(r"^pl[0-9a-f]{12}$")


def call(system_name: str, request: dict, timeout: float = 120) -> dict:
    if not NAME.match(system_name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    result = run(
        ["runuser", "-u", system_name, "--", "php", str(LIB_DIR / "pressluft-wp.php")],
        input=json.dumps(request),
        check=False,
        timeout=timeout,
    )
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise NodeError("wordpress_failed", f"WordPress helper gave no answer: {detail}")
    if not answer.get("ok"):
        raise NodeError("wordpress_failed", f"WordPress: {answer.get('error', 'failed')}")
    return answer
