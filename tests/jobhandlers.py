"""Job handlers used only by the tests (settings_test registers this module).

Most do no node work: they exercise the queue itself. The last ones run
programs on the job's node over SSH (the local node in the tests), fenced
as the product's node programs are.
"""

import contextlib
import json
import os
import time
from pathlib import Path

from apps.core.choices import LifecycleStatus
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler


@job_handler("test_noop")
def noop(ctx):
    ctx.log("nothing to do")


@job_handler("test_record", running_status=LifecycleStatus.DEPLOYING)
def record(ctx):
    """Logs its start and end (wall clock ns) so a test can check runs never overlapped."""
    ctx.log(f"start {time.time_ns()} pid {os.getpid()}")
    time.sleep(float(ctx.payload.get("sleep", 0.01)))
    ctx.log(f"end {time.time_ns()}")


@job_handler("test_sleep", running_status=LifecycleStatus.DEPLOYING)
def sleep(ctx):
    ctx.log(f"sleeping pid {os.getpid()}")
    ctx.sleep(float(ctx.payload.get("seconds", 5)))


@job_handler("test_fail", running_status=LifecycleStatus.DEPLOYING)
def fail(ctx):
    raise JobError(ctx.payload.get("code", "internal_error"), ctx.payload.get("message", "failed on purpose"))


@job_handler("test_crash", running_status=LifecycleStatus.CLONING)
def crash(ctx):
    raise RuntimeError("secret=hunter2 should not leak")


@job_handler("test_ticks", running_status=LifecycleStatus.DEPLOYING)
def ticks(ctx):
    """Work with a side effect outside the database: a line per tick appended
    to ``payload["path"]`` (attempt, pid, wall clock ns), each after a checkpoint,
    as a node program's steps would be."""
    for _ in range(int(ctx.payload.get("ticks", 10))):
        ctx.checkpoint()
        with open(ctx.payload["path"], "a") as effects:
            effects.write(f"{ctx.job.attempt_count} {os.getpid()} {time.time_ns()}\n")
        time.sleep(float(ctx.payload.get("interval", 0.5)))


def _node_lock():
    # The node-side module (standard library only), used here as a node program uses it.
    from apps.nodes.remote import node_lock

    return node_lock


@job_handler("test_fenced_steps", running_status=LifecycleStatus.DEPLOYING)
def fenced_steps(ctx):
    """Short node work for the soak: ``steps`` times, a checkpoint, then one
    line (job, attempt, pid, wall clock ns) appended to ``payload["path"]``
    while holding the job's node locks (``ctx.fence()``) in ``payload["fence_dir"]``
    — what a node program of the job would do on its node, here on this
    machine. A stale run that passed its checkpoint just before a pause meets
    the attempt check there; a queue that ran two jobs of one scope at once
    shows as their lines interleaving."""
    node_lock = _node_lock()
    fence = {**ctx.fence(), "wait": float(ctx.payload.get("wait", 60))}
    for _ in range(int(ctx.payload.get("steps", 2))):
        ctx.checkpoint()
        try:
            # A job of no node (the uncontended rate) has no scope to hold.
            with node_lock.held(fence, Path(ctx.payload["fence_dir"])) if fence["locks"] else contextlib.nullcontext():
                with open(ctx.payload["path"], "a") as effects:
                    effects.write(f"{ctx.job.pk.hex} {ctx.job.attempt_count} {os.getpid()} {time.time_ns()}\n")
        except node_lock.Busy as exc:
            raise JobError("node_busy", str(exc), retryable=True) from None
        except node_lock.Stale as exc:
            raise JobError("claim_stale", str(exc)) from None
        time.sleep(float(ctx.payload.get("interval", 0.005)))


# A stand-in node program, sent on stdin to ``python3 -`` (its parameters are
# in its text): it holds the job's node locks (the real node_lock.py from the
# bundle) and appends a tick per interval to a file, as a long node step would.
REMOTE_TICKS = """
import json, os, sys, time
params = json.loads(PARAMS)
sys.path.insert(0, params["lib"])
import node_lock
try:
    with node_lock.held(params["fence"]):
        for _ in range(params["ticks"]):
            with open(params["path"], "a") as effects:
                effects.write(f"{params['job']} {params['fence']['attempt']} {os.getpid()} {time.time_ns()}\\n")
            time.sleep(params["interval"])
except node_lock.Busy as exc:
    print(f"ERROR node_busy 1 {exc}", flush=True)
    sys.exit(2)
except node_lock.Stale as exc:
    print(f"ERROR claim_stale 0 {exc}", flush=True)
    sys.exit(2)
print("RESULT {}", flush=True)
"""


@job_handler("test_remote_ticks", running_status=LifecycleStatus.DEPLOYING)
def remote_ticks(ctx):
    """``ticks`` lines (job, attempt, pid, ns) appended to ``payload["path"]``
    by a program on the job's node, through the SSH layer with the run's stop
    event: what stops it is what stops a node program. Nothing is written to
    the database while it runs (the tests cut the worker off from it)."""
    from django.conf import settings

    from apps.nodes import ssh
    from apps.nodes.connections import open_connection
    from apps.nodes.remote_exec import ProgramOutput, as_job_error, ensure_bundle

    params = {"lib": settings.NODE_LIB_DIR, "fence": ctx.fence(), "job": ctx.job.pk.hex, "path": ctx.payload["path"],
              "ticks": int(ctx.payload.get("ticks", 20)), "interval": float(ctx.payload.get("interval", 0.25))}
    connection = open_connection(ctx.job.node)
    ensure_bundle(connection)
    ctx.confirm_claim()
    output = ProgramOutput()
    try:
        connection.run(["python3", "-"], stdin=REMOTE_TICKS.replace("PARAMS", repr(json.dumps(params))),
                       timeout=ctx.job.timeout_seconds, on_line=output.line, stop_event=ctx.stop_event)
    except ssh.RemoteStopped:
        ctx.checkpoint()
        raise JobError("remote_step_failed", "the ticks were stopped on the node") from None
    except ssh.RemoteStepFailed as exc:
        raise (output.error() or as_job_error(exc)) from None
    if output.error() is not None:
        raise output.error()


@job_handler("test_env_health", running_status=LifecycleStatus.DEPLOYING)
def env_health(ctx):
    """The real ``env_health.py`` on the environment's node through
    ``run_program`` with this run's context (claim confirmed, fence sent).
    Appends "attempt pid" to ``payload["runs"]`` first, so a test knows which
    worker process runs which attempt."""
    from apps.environments import naming
    from apps.nodes.remote_exec import run_program

    with open(ctx.payload["runs"], "a") as runs:
        runs.write(f"{ctx.job.attempt_count} {os.getpid()} {time.time_ns()}\n")
    environment = ctx.job.environment
    params = {"system_name": naming.system_name(environment), "root": naming.root(environment),
              "url": environment.preview_url}
    ctx.result = run_program(environment.node, "env_health.py", params, ctx=ctx, timeout=300)
