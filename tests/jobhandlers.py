"""Job handlers used only by the tests (settings_test registers this module).

They do no node work: they exercise the queue itself.
"""

import os
import time

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
