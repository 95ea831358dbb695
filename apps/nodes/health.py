"""A live health check of a node, outside the job queue: it only reads, and an
operator waits for it (the API's ``?refresh=1``, the admin). The scheduler
also refreshes reports that have grown old (``refresh_stale``), so what the
admin flags (a certificate near expiry, a failed renewal) is current."""

import logging
from datetime import timedelta

from django.utils import timezone

from apps.nodes import services
from apps.nodes.choices import NodeStatus
from apps.nodes.models import Node
from apps.nodes.operator_calls import NodeCallFailed, run_now

HEALTH_TIMEOUT = 10

# How old a node's report may grow before the scheduler asks again.
STALE_AFTER = timedelta(hours=6)

logger = logging.getLogger(__name__)

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


def refresh_stale() -> int:
    """Called by the scheduler: check every active or unreachable node whose
    report is older than STALE_AFTER. A node that does not answer is marked
    unreachable (and one that answers again, active); the others go on."""
    cutoff = timezone.now() - STALE_AFTER
    stale = (Node.objects.filter(status__in=[NodeStatus.ACTIVE, NodeStatus.UNREACHABLE])
             .exclude(health_checked_at__gte=cutoff).order_by("name"))
    checked = 0
    for node in stale:
        try:
            check_health(node)
        except NodeCallFailed as exc:
            logger.warning("health check of node %s failed: %s", node.name, exc.node_error.message)
            continue
        checked += 1
    return checked
