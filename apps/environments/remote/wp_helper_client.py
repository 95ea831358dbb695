"""Calling pressluft-wp.php (the WordPress helper) as an environment's user.

Everything the helper prints is the site's to choose: it loads WordPress with
the site's plugins, which can write to stdout and stderr, or print an answer
of their own and exit. So its output never becomes an error message as it is:
the tail of it goes to the job log (bounded, control characters escaped by
nodelib), and the error message is fixed text with the exit status, plus the
answer's own ``error`` field cut short and on one line (it can carry
WordPress's or the database's wording, or whatever a plugin put there).
"""

import json
import re
import subprocess

from nodelib import LIB_DIR, NodeError, clean_text, info, run_bounded

NAME = re.compile(r"^pl[0-9a-f]{12}$")
# The answer is the last line of stdout; the largest (held mail) stays well below this.
KEEP_STDOUT = 16 * 1024 * 1024
KEEP_STDERR = 64 * 1024
LOGGED_LINES = 5
LOGGED_LINE_CHARS = 300
ERROR_FIELD_CHARS = 300


def call(system_name: str, request: dict, timeout: float = 120) -> dict:
    if not NAME.match(system_name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    try:
        result = run_bounded(
            ["runuser", "-u", system_name, "--", "php", str(LIB_DIR / "pressluft-wp.php")],
            input=json.dumps(request), timeout=timeout, keep_stdout=KEEP_STDOUT, keep_stderr=KEEP_STDERR,
        )
    except subprocess.TimeoutExpired:
        raise NodeError("wordpress_failed", f"The WordPress helper gave no answer within {int(timeout)} s "
                                            f"(command {request.get('command')!r}).") from None
    answer = _answer(result.stdout)
    if answer is None:
        log_output(result, stdout=True)
        raise NodeError("wordpress_failed", f"The WordPress helper gave no answer (exit status {result.returncode}); "
                                            "the end of its output is in the job log.")
    if not answer.get("ok"):
        log_output(result, stdout=False)
        raise NodeError("wordpress_failed", f"WordPress reported an error: {site_text(answer.get('error'))}")
    return answer


def _answer(stdout: str) -> dict | None:
    lines = stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def site_text(value) -> str:
    """The helper's ``error`` field: short, one line, never trusted to be text."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
        return "(no description)"
    return clean_text(" ".join(str(value).split()), ERROR_FIELD_CHARS)


def log_output(result: subprocess.CompletedProcess, *, stdout: bool) -> None:
    """The last lines the helper wrote, for the operator: in the job log only."""
    streams = [("stderr", result.stderr)] + ([("stdout", result.stdout)] if stdout else [])
    for name, text in streams:
        lines = [line.strip() for line in text.splitlines() if line.strip()][-LOGGED_LINES:]
        if lines:
            shown = " | ".join(clean_text(line, LOGGED_LINE_CHARS) for line in lines)
            info(f"WordPress helper {name} (written by the site's code; last lines): {shown}")
