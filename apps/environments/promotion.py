"""Promotion mechanics, panel side: the phases of the node program
``remote/env_promote.py`` in order, with the health check between the switch
and its outcome (docs/promotion.md, "Promotion").

Changes no rows: the env_promote job (gated by the drift check, after its
fresh backup of production) calls ``promote`` and records the release and the
result itself. ``plan`` is read-only.

A JobError leaving ``promote`` says where it stopped in ``promotion_stage``:
``undone`` (failed before or during the switch; what was prepared is gone and
production is as it was), ``undo_failed`` (that undoing failed too),
``reverted`` (no verdict on the promoted site; swapped back),
``revert_failed`` (the swap back itself failed: production needs the
pre-promotion backup), ``finish`` (the promotion is live and healthy; only
the cleanup failed). Errors of another run holding the node carry none.
"""

from __future__ import annotations

import contextlib
import threading
import time

from apps.environments import node_ops
from apps.jobs.choices import LogLevel
from apps.jobs.errors import JobClaimLost, JobError


def plan(source, target, *, ctx=None) -> dict:
    """What a promotion of ``source`` into ``target`` would change (node program's ``plan`` phase)."""
    return node_ops.promotion_phase(source, target, "plan", ctx=ctx, timeout=1800)


def promote(source, target, *, release: str, ctx=None) -> dict:
    """Prepare beside the live site, switch in one step, check health; finish
    when healthy, swap back when not (``promotion_rolled_back``). A failure
    before the switch removes what was prepared (unless another run holds the
    node: then that run owns it); a failure of the swap back itself
    propagates (stage ``revert_failed``): production is then restored from
    the pre-promotion backup by the job. Once healthy, the finish runs to its
    end even if the job is cancelled meanwhile."""
    try:
        # Both in one run of the node program (one SSH round trip): as if run one after the other.
        done = node_ops.promotion_phase(source, target, "prepare_switch", release=release, ctx=ctx)
        prepared, switched = done["prepared"], done["switched"]
    except JobError as exc:
        if exc.code not in NOT_OURS:
            exc.promotion_stage = "undone" if _undo_quietly(source, target, ctx) else "undo_failed"
        raise
    if ctx is not None:
        ctx.log(f"health check of {target.slug} after the switch")
    try:
        report = node_ops.check_health(target, ctx, fatal_errors_since=switched["switched_at"])
    except JobError as exc:
        # No verdict (the node refused to look): production must not stay on an unchecked promotion.
        revert(source, target, ctx)
        exc.promotion_stage = "reverted"
        raise
    if not report.healthy:
        revert(source, target, ctx)
        error = JobError("promotion_rolled_back", f"production failed its health check after the promotion "
                                                  f"({report.problem}); the previous tables and release are live again")
        error.promotion_stage = "reverted"
        raise error
    if ctx is not None:
        ctx.log(f"{target.slug} is healthy after the switch")
        # The last moment a cancel or the timeout stops it: the job then swaps back (``revert``).
        ctx.confirm_claim()
    try:
        finished = node_ops.promotion_phase(source, target, "finish", ctx=shielded(ctx), timeout=600)
    except JobError as exc:
        exc.promotion_stage = "finish"
        raise
    return {"release": release, "previous_release": prepared["previous_release"], "tables": prepared["tables"],
            "url_rewrite": prepared["url_rewrite"], "timings": prepared.get("timings", {}),
            "switched_at": switched["switched_at"],
            "pruned": finished.get("pruned", [])}


def revert(source, target, ctx=None) -> dict:
    """The swap back, run to its end whatever stopped the job (a cancel, the
    timeout); its failure is JobError with stage ``revert_failed``."""
    try:
        return node_ops.promotion_phase(source, target, "revert", ctx=shielded(ctx), timeout=600)
    except JobError as exc:
        exc.promotion_stage = "revert_failed"
        raise


# Errors that mean another run of the job holds (or may hold) the node's lock: its state is not ours to undo.
NOT_OURS = ("node_busy", "claim_stale")


def _undo_quietly(source, target, ctx) -> bool:
    """The swap back after a failure before or during the switch; its own
    failure is logged, the first error is the one reported (a later prepare
    or revert clears what is left). Whether it succeeded."""
    if ctx is not None:
        ctx.log("the promotion did not complete its switch; undoing what it prepared")
    try:
        node_ops.promotion_phase(source, target, "revert", ctx=shielded(ctx), timeout=600)
    except JobError as exc:
        if ctx is not None:
            ctx.log(f"undoing failed too ({exc.code}: {exc.message}); a revert or a new promotion clears it")
        return False
    return True


class Shielded:
    """A job's context for work that must run to its end once begun (the swap
    back, the finish): a cancel or the job's timeout no longer stops it, so
    production is never left between two states; a lost claim still does
    (another run owns the job then). Logs go to the job as usual."""

    def __init__(self, ctx):
        self._ctx = ctx
        self.job = ctx.job
        self.payload = ctx.payload
        self.stop_event = threading.Event()
        self.claim_lost = ctx.claim_lost

    def log(self, message, *args, **kwargs):
        self._ctx.log(message, *args, **kwargs)

    @contextlib.contextmanager
    def step(self, name: str):
        self.checkpoint()
        self.log(name, LogLevel.STEP)
        yield

    def fence(self) -> dict:
        return self._ctx.fence()

    def checkpoint(self) -> None:
        if self._ctx.claim_lost.is_set():
            raise JobClaimLost()

    def confirm_claim(self) -> None:
        self.checkpoint()

    def sleep(self, seconds: float) -> None:
        self.checkpoint()
        time.sleep(seconds)


def shielded(ctx):
    return None if ctx is None else Shielded(ctx)
