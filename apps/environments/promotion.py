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
    before the switch removes what was prepared (unless another run holds the
    node: then that run owns it); a failure of the swap back itself
    propagates: production is then restored from the pre-promotion backup by
    the job."""
    try:
        prepared = node_ops.promotion_phase(source, target, "prepare", release=release, ctx=ctx)
        switched = node_ops.promotion_phase(source, target, "switch", ctx=ctx, timeout=600)
    except JobError as exc:
        if exc.code not in NOT_OURS:
            _undo_quietly(source, target, ctx)
        raise
    try:
        report = node_ops.check_health(target, ctx, fatal_errors_since=switched["switched_at"])
    except JobError:
        # No verdict (the node refused to look): production must not stay on an unchecked promotion.
        node_ops.promotion_phase(source, target, "revert", ctx=ctx, timeout=600)
        raise
    if not report.healthy:
        node_ops.promotion_phase(source, target, "revert", ctx=ctx, timeout=600)
        raise JobError("promotion_rolled_back", f"production failed its health check after the promotion "
                                                f"({report.problem}); the previous tables and release are live again")
    finished = node_ops.promotion_phase(source, target, "finish", ctx=ctx, timeout=600)
    return {"release": release, "previous_release": prepared["previous_release"], "tables": prepared["tables"],
            "url_rewrite": prepared["url_rewrite"], "timings": prepared.get("timings", {}),
            "switched_at": switched["switched_at"],
            "pruned": finished.get("pruned", [])}


# Errors that mean another run of the job holds (or may hold) the node's lock: its state is not ours to undo.
NOT_OURS = ("node_busy", "claim_stale")


def _undo_quietly(source, target, ctx) -> None:
    """The swap back after a failure before or during the switch; its own
    failure is logged, the first error is the one reported (a later prepare
    or revert clears what is left)."""
    if ctx is not None:
        ctx.log("the promotion did not complete its switch; undoing what it prepared")
    try:
        node_ops.promotion_phase(source, target, "revert", ctx=ctx, timeout=600)
    except JobError as exc:
        if ctx is not None:
            ctx.log(f"undoing failed too ({exc.code}: {exc.message}); a revert or a new promotion clears it")
