"""What a non-production environment holds back from the live world:
scheduled work (WP-Cron, the Action Scheduler), payment gateways, outgoing
HTTP requests (besides mail, see held_mail.py). The staging must-use plugin
does the holding on the node; this module reads its state and its request log
(remote/wp_staging_holds.py, while the operator waits) and checks the
per-environment allow-list. docs/staging-holds.md has the whole picture.
"""

import re

from django.utils.dateparse import parse_datetime

from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.environments import node_ops
from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment
from apps.nodes.operator_calls import run_now

REQUESTS_MAX = 200
HOLDS_DEADLINE = 15.0
ALLOWED_HOSTS_MAX = 50
HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")

# The holds the plugin reports, in the order the environment's page lists them.
HOLD_DESCRIPTIONS = {
    "wp_cron": "WP-Cron does not run on page loads or from wp-cron.php",
    "action_scheduler": "The Action Scheduler (WooCommerce) runs no pending actions",
    "payment_gateways": "Payment gateways switched off and to test mode",
    "outgoing_requests": "Outgoing HTTP requests: payment processors and hosts not on the allow-list refused",
    "mail": "Mail is held, not sent",
    "search_engines": "Search engines are discouraged",
}


def valid_host(host) -> bool:
    return isinstance(host, str) and bool(HOST.match(host))


def clean_hosts(hosts, field: str = "hosts") -> list[str]:
    """Host names as the allow-list keeps them: lower case, each once, sorted."""
    if not isinstance(hosts, list):
        raise ApiError("bad_request", "hosts must be a list of host names.", {"fields": {field: ["expected a list"]}})
    if len(hosts) > ALLOWED_HOSTS_MAX:
        raise ApiError("bad_request", f"At most {ALLOWED_HOSTS_MAX} hosts.",
                       {"fields": {field: [f"at most {ALLOWED_HOSTS_MAX}"]}})
    cleaned = set()
    for host in hosts:
        name = host.strip().lower().rstrip(".") if isinstance(host, str) else host
        if not valid_host(name):
            raise ApiError("bad_request", f"Not a host name: {str(host)[:100]!r}.",
                           {"fields": {field: ["expected host names such as api.example.com (no scheme, port or path)"]}})
        cleaned.add(name)
    return sorted(cleaned)


def non_production_environment(environment_id) -> Environment:
    environment = Environment.objects.select_related("node").filter(pk=environment_id).first()
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if environment.environment_type == EnvironmentType.PRODUCTION:
        raise ApiError("conflict", "Production holds nothing back: it is the live site.")
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                       {"status": environment.status})
    return environment


def _read(environment, limit: int) -> dict:
    return run_now(environment.node, "wp_staging_holds.py", node_ops.staging_holds_params(environment, limit),
                   timeout=HOLDS_DEADLINE, wordpress_action="read the staging holds")


def staging_holds(environment_id) -> dict:
    """Which holds are on, the due work they hold back and the outgoing policy.

    Errors: 404 not_found, 409 conflict (production), 409 environment_not_active,
    502 node_unreachable, 502 wp_cli_error.
    """
    environment = non_production_environment(environment_id)
    return _holds(environment, _read(environment, 1))


def overview(environment_id, limit: int = REQUESTS_MAX) -> tuple[dict, list[dict]]:
    """staging_holds and outgoing_requests from one visit to the node (the admin's page)."""
    environment = non_production_environment(environment_id)
    answer = _read(environment, limit)
    return _holds(environment, answer), _requests(answer, limit)


def _holds(environment, answer: dict) -> dict:
    holds = answer.get("holds") if isinstance(answer.get("holds"), dict) else {}
    due = answer.get("due") if isinstance(answer.get("due"), dict) else {}
    return {
        "holds": [{"name": name, "description": text, "active": holds.get(name) is True}
                  for name, text in HOLD_DESCRIPTIONS.items()],
        "due_cron_events": _count(due.get("cron_events")),
        "due_scheduled_actions": _count(due.get("scheduled_actions")),
        "gateway_settings": [
            {"option": str(row.get("option"))[:100], "enabled": str(row.get("enabled"))[:20]}
            for row in holds.get("gateway_settings") or [] if isinstance(row, dict)
        ][:50],
        "payment_hosts": [host for host in holds.get("payment_hosts") or [] if valid_host(host)][:200],
        "allowed_hosts": list(environment.outgoing_allowed_hosts or []),
    }


def outgoing_requests(environment_id, limit: int = REQUESTS_MAX) -> list[dict]:
    """The latest outgoing HTTP requests WordPress made, newest first:
    ``time``, ``method``, ``host``, ``path``, ``blocked``, ``reason``.

    Errors: as staging_holds, and 400 bad_request (limit).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= REQUESTS_MAX:
        raise ApiError("bad_request", f"limit must be a whole number from 1 to {REQUESTS_MAX}.",
                       {"fields": {"limit": [f"expected 1 to {REQUESTS_MAX}"]}})
    environment = non_production_environment(environment_id)
    return _requests(_read(environment, limit), limit)


def _requests(answer: dict, limit: int) -> list[dict]:
    rows = answer.get("requests") if isinstance(answer.get("requests"), list) else []
    return [_request(row) for row in rows if isinstance(row, dict)][:limit]


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _request(row: dict) -> dict:
    stamp = str(row.get("time") or "")
    try:
        when = parse_datetime(stamp) if stamp else None
    except ValueError:
        when = None
    return {
        "time": when,
        "method": str(row.get("method") or "")[:10],
        "host": str(row.get("host") or "")[:253],
        "path": str(row.get("path") or "")[:200],
        "blocked": row.get("blocked") is True,
        "reason": str(row.get("reason") or "")[:50],
    }
