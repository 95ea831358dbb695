"""Promotion mechanics, panel side: the phases of the node program
``remote/env_promote.py`` in order, with the health check between the switch
and its outcome (docs/promotion.md, "Promotion").

Changes no rows: the env_promote job (gated by the drift check, after its
fresh backup of production) calls ``promote`` and records the release and the
result itself. ``plan`` is read-only.
"""

from __future__ import annotations

from apps.environments import node_ops
from apps.jobs.errors import JobError


def plan(source, target, *, ctx=None) -> dict:
    """What a promotion of ``source`` into ``target`` would change (node program's ``plan`` phase)."""
    return node_ops.promotion_phase(source, target, "plan", ctx=ctx, timeout=1800)


def promote(source, target, *, release: str, ctx=None) -> dict:
    """Prepare beside the live site, switch in one step, check health; finish
    when healthy, swap back when not (``promotion_rolled_back``). A failure
    before the switch removes what was prepared; a failure of the swap back
    itself propagates: production is then restored from the pre-promotion
    backup by the job."""
    try:
        prepared = node_ops.promotion_phase(source, target, "prepare", release=release, ctx=ctx)
        switched = node_ops.promotion_phase(source, target, "switch", ctx=ctx, timeout=600)
    except JobError:
        if ctx is not None:
            ctx.log("the promotion did not switch; removing what it prepared")
        node_ops.promotion_phase(source, target, "revert", ctx=ctx, timeout=600)
        raise
    report = node_ops.check_health(target, ctx, fatal_errors_since=switched["switched_at"])
    if not report.healthy:
        node_ops.promotion_phase(source, target, "revert", ctx=ctx, timeout=600)
        raise JobError("promotion_rolled_back", f"production failed its health check after the promotion "
                                                f"({report.problem}); the previous tables and release are live again")
    finished = node_ops.promotion_phase(source, target, "finish", ctx=ctx, timeout=600)
    return {"release": release, "previous_release": prepared["previous_release"], "tables": prepared["tables"],
            "url_rewrite": prepared["url_rewrite"], "switched_at": switched["switched_at"],
            "pruned": finished.get("pruned", [])}
