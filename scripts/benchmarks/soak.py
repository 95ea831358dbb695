"""scripts/bench soak [JOBS]: the queue under real trouble, judged from side effects.

JOBS short jobs (10,000 unless given) over 12 sites on 4 nodes through 4
``runworker`` processes; while they run, one worker in 200 jobs is killed
(SIGKILL, and replaced) and one in 700 is paused (SIGSTOP) for 6 s, longer
than the lost-worker limit (4 s here, heartbeats every second, a sweep every
second). Each job appends a line per step to a file while holding its node
locks (tests/jobs/soak.py); afterwards the file is read: ``overlaps`` counts
runs whose effects interleaved on one site or node, ``lost`` the jobs that
did not end. The last line printed is the BENCH line.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(prog="scripts/bench soak")
    parser.add_argument("jobs", nargs="?", type=int, default=10_000)
    parser.add_argument("--sites", type=int, default=12)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kills", type=int, help="default: one per 200 jobs")
    parser.add_argument("--pauses", type=int, help="default: one per 700 jobs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pressluft.settings")
    os.environ["PRESSLUFT_JOB_HANDLER_MODULES"] = "tests.jobhandlers"
    os.environ.setdefault("PRESSLUFT_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    from tests.jobs.soak import Soak, SoakPlan

    call_command("migrate", interactive=False, verbosity=0)
    plan = SoakPlan(
        jobs=args.jobs, sites=args.sites, nodes=args.nodes, workers=args.workers,
        kills=args.kills if args.kills is not None else max(1, args.jobs // 200),
        pauses=args.pauses if args.pauses is not None else max(1, args.jobs // 700),
        seed=args.seed,
        # Bounded by the slowest rate seen so far (about 5 jobs/s), with room.
        timeout=max(600.0, args.jobs * 0.5),
    )
    print(f"soak: {plan.jobs} jobs, {plan.sites} sites on {plan.nodes} nodes, {plan.workers} workers, "
          f"{plan.kills} kills, {plan.pauses} pauses of {plan.pause_seconds} s (lost after {plan.lost_after} s)",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="pressluft-soak.") as work_dir:
        result = Soak(plan, Path(work_dir), os.environ["DATABASE_URL"], say=lambda line: print(line, flush=True)).run()
    print(f"soak: {result.ended} ended in {result.seconds:.1f} s ({result.jobs_per_s:.1f} jobs/s), "
          f"statuses {result.statuses}", flush=True)
    for line in (result.overlaps + result.missing_effects)[:20]:
        print(f"soak: {line}", flush=True)
    if result.lost:
        print(result.worker_logs, file=sys.stderr)
    failed = sum(n for status, n in result.statuses.items() if status != "succeeded")
    print(f"BENCH soak {result.summary()} failed={failed} jobs_per_s={result.jobs_per_s:.1f}", flush=True)


if __name__ == "__main__":
    main()
