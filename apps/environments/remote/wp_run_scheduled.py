#!/usr/bin/env python3
"""Run a non-production environment's held scheduled work once: its due
WP-Cron events and the Action Scheduler's queue, through the WordPress
helper (command run-held), with the payment and outgoing-request holds still
on. What the helper reports is the site's text: counts are taken only as
counts, hook names bounded and cleaned.

Parameters: system_name, root, url.
"""

import wp_helper_client
from nodelib import clean_text, info, main, step


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _due(value) -> dict:
    value = value if isinstance(value, dict) else {}
    return {"cron_events": _count(value.get("cron_events")), "scheduled_actions": _count(value.get("scheduled_actions"))}


def run_scheduled(params: dict) -> dict:
    step("run the due WP-Cron events and the Action Scheduler queue once")
    answer = wp_helper_client.call(params["system_name"],
                                   {"command": "run-held", "root": params["root"], "url": params["url"]}, timeout=840)
    hooks = [clean_text(hook, 100) for hook in (answer.get("hooks") or []) if isinstance(hook, str)][:50]
    result = {
        "cron_events": _count(answer.get("cron_events")),
        "hooks": hooks,
        "action_scheduler": answer.get("action_scheduler") is True,
        "due_before": _due(answer.get("due_before")),
        "due_after": _due(answer.get("due_after")),
    }
    info(f"ran {result['cron_events']} WP-Cron event(s): {', '.join(hooks) or 'none'}; "
         f"Action Scheduler queue {'run' if result['action_scheduler'] else 'not present'}; "
         f"due actions before {result['due_before']['scheduled_actions']}, after {result['due_after']['scheduled_actions']}")
    return result


if __name__ == "__main__":
    main(run_scheduled)
