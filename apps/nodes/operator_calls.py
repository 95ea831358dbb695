"""Running a node program now, while an operator waits (a live health check,
a WordPress login link, the held mail): no job, a short deadline, and a
failure that is already the API error the operator is shown.

The API, the admin and the services all call ``run_now`` so a node error is
translated in one place. Two kinds of program, two ways to tell a failure:

- A WordPress helper (``wordpress_action=``, what it does, e.g. "create a
  login link"): any SSH failure is ``node_unreachable`` naming the node, and the
  helper's own error is ``wp_cli_error`` with its message.
- A program of the panel's own (``task=``, what it is, e.g. "health
  check"): ``host_key_mismatch`` and
  ``ssh_auth_failed`` keep their codes and the SSH layer's sentence (it names
  the node and the cause, never remote output), a timeout is
  ``node_unreachable``; anything else is ``node_unreachable`` with a pointer
  to the server log, where the node's message is written.
"""

from __future__ import annotations

import logging

from apps.core.errors import ApiError
from apps.jobs.errors import JobError
from apps.nodes.remote_exec import run_program

logger = logging.getLogger(__name__)

# The job error codes of the SSH layer (the program never ran, or never
# finished), each with the API code a panel program's failure gets.
_SSH_API_CODES = {
    "node_unreachable": "node_unreachable",
    "remote_timeout": "node_unreachable",
    "host_key_mismatch": "host_key_mismatch",
    "ssh_auth_failed": "ssh_auth_failed",
}
SSH_FAILURE_CODES = frozenset(_SSH_API_CODES)


class NodeCallFailed(ApiError):
    """The API error for a failed operator call; ``node_error`` is the job
    error it was made from (for callers that act on the cause, such as
    marking the node unreachable)."""

    def __init__(self, code: str, message: str, node_error: JobError):
        super().__init__(code, message)
        self.node_error = node_error


def run_now(node, program: str, params: dict, *, timeout: float,
            wordpress_action: str | None = None, task: str | None = None) -> dict:
    """Run ``program`` on ``node`` within ``timeout`` seconds and return its
    RESULT; raise NodeCallFailed (an ApiError, 502) when it fails.

    Give exactly one of ``wordpress_action`` and ``task`` (see the module).
    """
    if (wordpress_action is None) == (task is None):
        raise TypeError("run_now needs exactly one of wordpress_action and task")
    try:
        return run_program(node, program, params, timeout=timeout)
    except JobError as exc:
        raise operator_error(node, program, exc, wordpress_action=wordpress_action, task=task) from None


def operator_error(node, program: str, exc: JobError, *,
                   wordpress_action: str | None = None, task: str | None = None) -> NodeCallFailed:
    """What the operator is told about ``exc``, raised by ``program`` on ``node``."""
    if wordpress_action is not None:
        if exc.code in SSH_FAILURE_CODES:
            return NodeCallFailed("node_unreachable", f"Could not reach node {node.name}: {exc.message}", exc)
        return NodeCallFailed("wp_cli_error", f"WordPress could not {wordpress_action}: {exc.message}", exc)
    if exc.code in _SSH_API_CODES:
        return NodeCallFailed(_SSH_API_CODES[exc.code], exc.message, exc)
    logger.warning("%s failed on node %s: %s: %s", program, node.name, exc.code, exc.message)
    return NodeCallFailed(
        "node_unreachable", f"The {task} could not run on the node; see the server log.", exc
    )
