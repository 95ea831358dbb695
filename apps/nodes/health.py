"""A live health check of a node, outside the job queue: it only reads, and an
operator waits for it (the API's ``?refresh=1``, the admin)."""

from apps.nodes import services
from apps.nodes.operator_calls import NodeCallFailed, run_now

HEALTH_TIMEOUT = 10

# Errors that say the node itself did not answer (rather than a check failing on it).
UNREACHABLE_CODES = {"node_unreachable", "remote_timeout"}


def check_health(node) -> dict:
    """Run node_health.py on the node; record and return its report.

    Raises NodeCallFailed, the API error (502 node_unreachable,
    host_key_mismatch, ssh_auth_failed), when the node cannot be asked; an
    unreachable node is marked so.
    """
    try:
        report = run_now(node, "node_health.py", {}, timeout=HEALTH_TIMEOUT, task="health check")
    except NodeCallFailed as exc:
        if exc.node_error.code in UNREACHABLE_CODES:
            services.mark_unreachable(node, exc.node_error.message)
        raise
    services.record_health(node, report)
    return report
