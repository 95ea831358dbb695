"""A live health check of a node, outside the job queue: it only reads, and an
operator waits for it (the API's ``?refresh=1``, the admin)."""

from apps.jobs.errors import JobError
from apps.nodes import services
from apps.nodes.remote_exec import run_program

HEALTH_TIMEOUT = 10

# Errors that say the node itself did not answer (rather than a check failing on it).
UNREACHABLE_CODES = {"node_unreachable", "remote_timeout"}


def check_health(node) -> dict:
    """Run node_health.py on the node; record and return its report.

    Raises JobError (node_unreachable, host_key_mismatch, ...) when the node
    cannot be asked; an unreachable node is marked so.
    """
    try:
        report = run_program(node, "node_health.py", {}, timeout=HEALTH_TIMEOUT)
    except JobError as exc:
        if exc.code in UNREACHABLE_CODES:
            services.mark_unreachable(node, exc.message)
        raise
    services.record_health(node, report)
    return report
