"""The mail a non-production environment held back instead of sending it.

The staging must-use plugin records each held mail in the environment's own
WordPress database; the node's WordPress helper reads them back
(``held-mail``, through remote/wp_held_mail.py). Reading changes nothing, so
there is no job: one node program while the operator waits, bounded by a
short deadline.
"""

from django.utils.dateparse import parse_datetime

from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.environments import node_ops
from apps.environments.models import Environment
from apps.nodes.operator_calls import run_now

# The plugin keeps the last 50 held mails; asking for more would show no more.
HELD_MAIL_MAX = 50
HELD_MAIL_DEADLINE = 15.0


def held_mail(environment_id, limit: int = HELD_MAIL_MAX) -> list[dict]:
    """The latest held mails, newest first: ``time`` (aware datetime, or None
    when the record has none), ``recipients``, ``subject``, ``excerpt``.

    Errors: 400 bad_request (limit), 404 not_found, 409 environment_not_active,
    502 node_unreachable (SSH), 502 wp_cli_error (the WordPress helper failed).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HELD_MAIL_MAX:
        raise ApiError("bad_request", f"limit must be a whole number from 1 to {HELD_MAIL_MAX}.",
                       {"fields": {"limit": [f"expected 1 to {HELD_MAIL_MAX}"]}})
    environment = Environment.objects.select_related("node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if environment.status != LifecycleStatus.ACTIVE:
        # Mid-deploy or mid-clone the code or database may be half there.
        raise ApiError(
            "environment_not_active", f"The environment is {environment.status}, not active.",
            {"status": environment.status},
        )
    mails = run_now(environment.node, "wp_held_mail.py", node_ops.held_mail_params(environment, limit),
                    timeout=HELD_MAIL_DEADLINE, wordpress_action="list the held mail")["mails"]
    return [_mail(row) for row in mails if isinstance(row, dict)]


def _mail(row: dict) -> dict:
    stamp = str(row.get("time") or "")
    try:
        when = parse_datetime(stamp) if stamp else None
    except ValueError:
        when = None
    return {
        "time": when,
        "recipients": str(row.get("to") or ""),
        "subject": str(row.get("subject") or ""),
        "excerpt": str(row.get("excerpt") or ""),
    }
