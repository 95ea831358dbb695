"""scripts/bench queue: the job queue measured end to end on real worker processes.

- jobs_per_s: no-op jobs (``test_noop`` via ``enqueue_job``) through a
  ``runworker`` cluster, from the first enqueue until all of them ended;
- q2_tasks_per_s: in the same run, on the same database and Q_CLUSTER
  settings, plain django-q2 no-op tasks (``async_task``) through a plain
  ``qcluster``, from the first enqueue until all were processed;
- ratio: jobs_per_s / q2_tasks_per_s, what the job bookkeeping costs;
- commit_to_start_ms_p50: on an idle queue, median time from a job's commit
  to its handler's first log line;
- blocked_start_ms_p50: median time from a blocking job's end to the start of
  the job of its site that waited for it;
- contended_jobs_per_s: the soak's shape without kills or pauses
  (tests/jobs/soak.py: short fenced jobs over 12 sites on 4 nodes, 4
  ``runworker`` processes, the product's heartbeat, sweep and lost-worker
  settings), from the first enqueue until all ended;
- contended_ratio: contended_jobs_per_s against the same jobs through the same
  workers with no site or node (nothing to wait for), measured in this run.

Run it as ``scripts/bench queue``; BENCH_JOBS, BENCH_CONTENDED_JOBS and
BENCH_LATENCY_SAMPLES change the sizes. The last line printed is the BENCH line.
"""

import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
JOBS = int(os.environ.get("BENCH_JOBS", "1000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "20"))
CONTENDED_JOBS = int(os.environ.get("BENCH_CONTENDED_JOBS", "400"))
BLOCKED_SAMPLES = 5
PLAIN_TASK = "scripts.benchmarks.queue.noop"


def noop():
    """The plain django-q2 task: nothing at all."""


def say(message):
    print(message, flush=True)


class Workers:
    """One ``manage.py COMMAND`` process in its own session; stopped on exit, whatever happens."""

    def __init__(self, command, log_dir: Path):
        self.command = command
        self.log_path = log_dir / f"{command}.log"
        self.process = None

    def __enter__(self):
        from django.conf import settings

        env = {**os.environ, "PRESSLUFT_SECRET_KEY": settings.SECRET_KEY, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", self.command],
                cwd=REPO_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc):
        # SIGTERM to the leader only (it stops its cluster cleanly), then the
        # whole session is killed so nothing outlives the benchmark.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def tail(self, lines=30):
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name} ---\n" + "\n".join(text)


def wait_for(predicate, timeout, what, workers, interval=0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if workers.process.poll() is not None:
            sys.exit(f"bench: {workers.command} exited while waiting for {what}\n{workers.tail()}")
        if time.monotonic() > deadline:
            sys.exit(f"bench: gave up waiting {timeout} s for {what}\n{workers.tail()}")
        time.sleep(interval)


def ended(job_ids):
    from apps.jobs.choices import TERMINAL
    from apps.jobs.models import Job

    return Job.objects.filter(pk__in=job_ids, status__in=TERMINAL).count() == len(job_ids)


def enqueue_at_commit(job_type, **kwargs):
    """Enqueue a job; returns it with the time its transaction committed."""
    from django.db import transaction
    from django.utils import timezone

    from apps.jobs.services import enqueue_job

    committed = []
    with transaction.atomic():
        # Registered before enqueue_job's dispatch, so it runs first after COMMIT.
        transaction.on_commit(lambda: committed.append(timezone.now()))
        job = enqueue_job(job_type, **kwargs)
    return job, committed[0]


def idle_commit_to_start_ms(workers) -> list[float]:
    from apps.jobs.models import JobLogLine

    delays = []
    chooser = random.Random(7)
    for _ in range(LATENCY_SAMPLES):
        # Not in step with the 0.1 s broker poll: spread over its phase.
        time.sleep(chooser.uniform(0.15, 0.35))
        job, committed = enqueue_at_commit("test_noop")
        wait_for(lambda: ended([job.pk]), 30, "an idle-queue job", workers)
        first_line = JobLogLine.objects.get(job=job, message="nothing to do")
        delays.append((first_line.created_at - committed).total_seconds() * 1000)
    return delays


def blocked_start_ms(workers) -> list[float]:
    from apps.environments.factories import EnvironmentFactory
    from apps.jobs.models import Job
    from apps.nodes.factories import NodeFactory
    from apps.sites.factories import SiteFactory

    tag = uuid.uuid4().hex[:10]
    environment = EnvironmentFactory(
        site=SiteFactory(slug=f"bench-{tag}"), node=NodeFactory(name=f"bench-{tag}"), slug="production"
    )
    delays = []
    for _ in range(BLOCKED_SAMPLES):
        blocker, _ = enqueue_at_commit("test_sleep", environment=environment, payload={"seconds": 0.3})
        blocked, _ = enqueue_at_commit("test_noop", environment=environment)
        wait_for(lambda: ended([blocker.pk, blocked.pk]), 30, "a blocked job", workers)
        blocker, blocked = Job.objects.get(pk=blocker.pk), Job.objects.get(pk=blocked.pk)
        delays.append((blocked.started_at - blocker.finished_at).total_seconds() * 1000)
    return delays


def jobs_per_second(workers) -> float:
    from apps.jobs.choices import JobStatus
    from apps.jobs.models import Job
    from apps.jobs.services import enqueue_job

    started = time.perf_counter()
    job_ids = [enqueue_job("test_noop").pk for _ in range(JOBS)]
    enqueued = time.perf_counter()
    wait_for(lambda: ended(job_ids), 600, f"{JOBS} jobs", workers, interval=0.01)
    elapsed = time.perf_counter() - started
    failed = Job.objects.filter(pk__in=job_ids).exclude(status=JobStatus.SUCCEEDED).count()
    if failed:
        sys.exit(f"bench: {failed} of {JOBS} no-op jobs did not succeed\n{workers.tail()}")
    say(f"jobs: {JOBS} in {elapsed:.2f} s (enqueueing took {enqueued - started:.2f} s)")
    return JOBS / elapsed


def plain_tasks_per_second(workers, count) -> float:
    from django.db.models import Max
    from django_q.models import OrmQ, Task
    from django_q.tasks import async_task

    baseline = OrmQ.objects.aggregate(last=Max("pk"))["last"] or 0
    started = time.perf_counter()
    task_ids = {async_task(PLAIN_TASK) for _ in range(count)}
    enqueued = time.perf_counter()
    # Messages already gone were processed; the rest are ours to wait for.
    pending = [row.pk for row in OrmQ.objects.filter(pk__gt=baseline) if row.task.get("id") in task_ids]
    wait_for(lambda: not OrmQ.objects.filter(pk__in=pending).exists(), 600, f"{count} plain tasks", workers, 0.01)
    elapsed = time.perf_counter() - started
    failed = Task.objects.filter(id__in=task_ids, success=False).count()
    if failed:
        sys.exit(f"bench: {failed} of {count} plain tasks failed\n{workers.tail()}")
    if count > 1:
        say(f"django-q2 tasks: {count} in {elapsed:.2f} s (enqueueing took {enqueued - started:.2f} s)")
    return count / elapsed


def soak_shape_per_second(log_dir: Path, scoped: bool) -> float:
    """The soak's jobs through its workers without kills or pauses; jobs per second."""
    from django.conf import settings

    from tests.jobs.soak import Soak, SoakPlan

    plan = SoakPlan(
        jobs=CONTENDED_JOBS, kills=0, pauses=0, scoped=scoped, timeout=max(600.0, CONTENDED_JOBS * 2.0),
        # The product's own timings: a sweep every 10 s must not be what moves blocked jobs.
        lost_after=settings.JOB_LOST_AFTER, heartbeat=settings.JOB_HEARTBEAT_INTERVAL,
        sweep_interval=settings.JOB_SWEEP_INTERVAL,
    )
    work_dir = log_dir / ("contended" if scoped else "uncontended")
    result = Soak(plan, work_dir, settings_database_url()).run()
    what = f"{plan.sites} sites on {plan.nodes} nodes" if scoped else "no site or node"
    if result.lost or result.overlaps or result.statuses != {"succeeded": plan.jobs}:
        sys.exit(f"bench: soak shape ({what}): {result.summary()} {result.statuses}\n{result.worker_logs}")
    say(f"soak shape, {what}: {plan.jobs} jobs through {plan.workers} workers in {result.seconds:.2f} s")
    return result.jobs_per_s


def settings_database_url() -> str:
    return os.environ["DATABASE_URL"]


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pressluft.settings")
    # The no-op test handlers; the worker processes inherit this too.
    os.environ["PRESSLUFT_JOB_HANDLER_MODULES"] = "tests.jobhandlers"
    # Per-task INFO lines would be a cost of their own, the same on both sides.
    os.environ.setdefault("PRESSLUFT_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    say(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"workers per cluster: {settings.Q_CLUSTER['workers']}, poll: {settings.Q_CLUSTER['poll']} s")

    with tempfile.TemporaryDirectory(prefix="pressluft-bench-logs.") as log_dir:
        with Workers("runworker", Path(log_dir)) as workers:
            warm_up, _ = enqueue_at_commit("test_noop")
            wait_for(lambda: ended([warm_up.pk]), 120, "the worker to start", workers, 0.05)
            latencies = idle_commit_to_start_ms(workers)
            blocked = blocked_start_ms(workers)
            jobs_rate = jobs_per_second(workers)
        with Workers("qcluster", Path(log_dir)) as workers:
            plain_tasks_per_second(workers, 1)
            tasks_rate = plain_tasks_per_second(workers, JOBS)
        uncontended_rate = soak_shape_per_second(Path(log_dir), scoped=False)
        contended_rate = soak_shape_per_second(Path(log_dir), scoped=True)

    p50 = statistics.median(latencies)
    say(f"idle commit -> handler start ms: p50 {p50:.1f}, max {max(latencies):.1f} ({len(latencies)} samples)")
    say(f"blocked job start after its blocker ended ms: p50 {statistics.median(blocked):.1f}, max {max(blocked):.1f}")
    say(f"soak shape: contended {contended_rate:.1f} jobs/s, uncontended {uncontended_rate:.1f} jobs/s")
    say(
        f"BENCH queue jobs_per_s={jobs_rate:.1f} q2_tasks_per_s={tasks_rate:.1f} "
        f"ratio={jobs_rate / tasks_rate:.2f} commit_to_start_ms_p50={p50:.1f} "
        f"blocked_start_ms_p50={statistics.median(blocked):.1f} "
        f"contended_jobs_per_s={contended_rate:.1f} contended_ratio={contended_rate / uncontended_rate:.2f}"
    )


if __name__ == "__main__":
    main()
