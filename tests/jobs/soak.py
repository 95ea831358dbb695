"""The soak: many short jobs over many sites and nodes through several
``runworker`` processes, some killed (SIGKILL) and some paused (SIGSTOP) for
longer than the lost-worker limit, judged from what the jobs did outside the
database: every job ends, and no two runs' side effects interleave on one
site or one node. tests/jobs/test_cluster_soak.py runs a few hundred jobs,
``scripts/bench soak`` thousands; ``scripts/bench queue`` runs the same shape
without kills for its contended rate.

The jobs are ``test_fenced_steps`` (tests/jobhandlers.py): each step appends
one line to a shared file while holding the job's node locks, as a node
program would. Judging needs the jobs' scopes, so they are created here.
"""

import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.jobs.support import WorkerProcesses, effect_lines, interleaved_effects

JOB_TYPE = "test_fenced_steps"
# A worker started less than this long ago is not killed or paused yet.
WORKER_BOOT_SECONDS = 5.0


@dataclass
class SoakPlan:
    jobs: int = 300
    sites: int = 12
    nodes: int = 4
    workers: int = 4  # runworker processes, each a django-q2 cluster plus the sweeper
    worker_env: dict = field(default_factory=lambda: {"PRESSLUFT_WORKERS": 2})
    kills: int = 3
    pauses: int = 2
    lost_after: float = 4.0
    heartbeat: float = 1.0
    sweep_interval: float = 1.0
    pause_seconds: float = 6.0  # longer than lost_after: the sweeper gives the job to someone else
    node_job_every: int = 8  # every so many jobs, one for a whole node (no site)
    steps: int = 2
    step_interval: float = 0.005
    scoped: bool = True  # False: the same jobs with no site or node, nothing to wait for (the uncontended rate)
    seed: int = 1
    timeout: float = 600.0  # jobs not ended by then count as lost


@dataclass
class SoakResult:
    jobs: int
    ended: int
    statuses: dict
    kills: int
    pauses: int
    overlaps: list
    missing_effects: list
    seconds: float
    worker_logs: str = ""

    @property
    def lost(self) -> int:
        return self.jobs - self.ended

    @property
    def jobs_per_s(self) -> float:
        return self.ended / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (f"jobs={self.jobs} kills={self.kills} pauses={self.pauses} overlaps={len(self.overlaps)} "
                f"lost={self.lost}")


class Soak:
    """One soak run on the database this process uses (its workers get ``database_url``)."""

    def __init__(self, plan: SoakPlan, work_dir: Path, database_url: str, env: dict | None = None, say=None):
        self.plan = plan
        self.work_dir = Path(work_dir)
        self.database_url = database_url
        self.env = {
            "PRESSLUFT_JOB_LOST_AFTER": plan.lost_after,
            "PRESSLUFT_JOB_HEARTBEAT_INTERVAL": plan.heartbeat,
            "PRESSLUFT_JOB_SWEEP_INTERVAL": plan.sweep_interval,
            **plan.worker_env,
            **(env or {}),
        }
        self.say = say or (lambda message: None)
        self.chooser = random.Random(plan.seed)
        self.effects = self.work_dir / "effects"
        self.fence_dir = self.work_dir / "fence"
        self.live: list[WorkerProcesses] = []
        self.every: list[WorkerProcesses] = []
        self.paused: dict[int, float] = {}  # index in live -> resume at (monotonic)
        self.started_at: dict[int, float] = {}  # id of a WorkerProcesses -> when it was started
        self.kills = self.pauses = 0

    # --- workers -------------------------------------------------------------
    def _start_worker(self) -> WorkerProcesses:
        workers = WorkerProcesses(self.work_dir / f"worker-{len(self.every)}", self.database_url, 1, self.env)
        workers.start()
        self.every.append(workers)
        self.started_at[id(workers)] = time.monotonic()
        return workers

    def _targets(self) -> list[int]:
        """Workers neither paused nor just started (one still booting has no job to lose)."""
        settled = time.monotonic() - WORKER_BOOT_SECONDS
        return [index for index, workers in enumerate(self.live)
                if index not in self.paused and self.started_at[id(workers)] < settled]

    def _kill_one(self) -> bool:
        targets = self._targets()
        if not targets:
            return False
        index = self.chooser.choice(targets)
        victim = self.live[index]
        os.killpg(victim.processes[0].pid, signal.SIGKILL)
        victim.processes[0].wait()
        self.live[index] = self._start_worker()
        self.kills += 1
        self.say(f"soak: killed worker {self.every.index(victim)}, started worker {len(self.every) - 1}")
        return True

    def _pause_one(self) -> bool:
        targets = self._targets()
        if not targets or len(self.live) - len(self.paused) < 2:
            return False  # someone must stay to sweep and rerun
        index = self.chooser.choice(targets)
        os.killpg(self.live[index].processes[0].pid, signal.SIGSTOP)
        self.paused[index] = time.monotonic() + self.plan.pause_seconds
        self.pauses += 1
        self.say(f"soak: paused worker {self.every.index(self.live[index])} for {self.plan.pause_seconds} s")
        return True

    def _resume_due(self, everyone: bool = False) -> None:
        for index, resume_at in list(self.paused.items()):
            if everyone or time.monotonic() >= resume_at:
                os.killpg(self.live[index].processes[0].pid, signal.SIGCONT)
                del self.paused[index]

    # --- jobs ----------------------------------------------------------------
    def _make_scopes(self):
        from apps.environments.factories import EnvironmentFactory
        from apps.nodes.factories import NodeFactory
        from apps.sites.factories import SiteFactory

        tag = f"{os.getpid()}-{time.monotonic_ns() % 10**9}"
        nodes = [NodeFactory(name=f"soak-{tag}-{index}") for index in range(self.plan.nodes)]
        environments = [
            EnvironmentFactory(site=SiteFactory(slug=f"soak-{tag}-{index}"), node=nodes[index % len(nodes)],
                               slug="production")
            for index in range(self.plan.sites)
        ]
        return nodes, environments

    def _enqueue(self, nodes, environments) -> dict:
        from apps.jobs.services import enqueue_job

        payload = {"path": str(self.effects), "fence_dir": str(self.fence_dir), "steps": self.plan.steps,
                   "interval": self.plan.step_interval}
        scopes = {}
        for index in range(self.plan.jobs):
            if not self.plan.scoped:
                job = enqueue_job(JOB_TYPE, payload=payload)
            elif self.plan.node_job_every and index % self.plan.node_job_every == 0:
                job = enqueue_job(JOB_TYPE, node=self.chooser.choice(nodes), payload=payload)
            else:
                job = enqueue_job(JOB_TYPE, environment=self.chooser.choice(environments), payload=payload)
            scopes[job.pk.hex] = (job.site_id, job.node_id)
        return scopes

    def run(self) -> SoakResult:
        from django.db.models import Count
        from django.utils import timezone

        from apps.jobs.choices import TERMINAL
        from apps.jobs.models import Job

        self.work_dir.mkdir(parents=True, exist_ok=True)
        nodes, environments = self._make_scopes()
        self.live = [self._start_worker() for _ in range(self.plan.workers)]
        events = ["kill"] * self.plan.kills + ["pause"] * self.plan.pauses
        self.chooser.shuffle(events)
        started = time.monotonic()
        since = timezone.now()
        scopes = self._enqueue(nodes, environments)
        if self.plan.scoped:
            mine = Job.objects.filter(node__in=nodes)
        else:
            mine = Job.objects.filter(job_type=JOB_TYPE, node__isnull=True, created_at__gte=since)
        self.say(f"soak: {len(scopes)} jobs enqueued in {time.monotonic() - started:.1f} s")

        deadline = started + self.plan.timeout
        ended = 0
        next_event = 0
        last_report = time.monotonic()
        try:
            while time.monotonic() < deadline:
                self._resume_due()
                ended = mine.filter(status__in=TERMINAL).count()
                if ended == len(scopes):
                    break
                # The events are spread over the run: the next one once its share of the jobs has ended.
                if next_event < len(events) and ended >= (next_event + 1) * len(scopes) / (len(events) + 1):
                    if (self._kill_one if events[next_event] == "kill" else self._pause_one)():
                        next_event += 1
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    self.say(f"soak: {ended} of {len(scopes)} ended after {last_report - started:.0f} s")
                time.sleep(0.25)
            seconds = time.monotonic() - started
            # Whatever a paused run would still do after it resumes counts too.
            had_paused = bool(self.paused)
            self._resume_due(everyone=True)
            if had_paused or self.pauses:
                time.sleep(min(3.0, self.plan.pause_seconds))
        finally:
            self._resume_due(everyone=True)
            for workers in self.every:
                workers.stop(grace=10)
            logs = "\n".join(workers.tail(15) for workers in self.every)

        statuses = {row["status"]: row["n"] for row in mine.values("status").annotate(n=Count("pk"))}
        rows = effect_lines(self.effects)
        return SoakResult(
            jobs=len(scopes),
            ended=ended,
            statuses=statuses,
            kills=self.kills,
            pauses=self.pauses,
            overlaps=interleaved_effects(scopes, rows),
            missing_effects=self._missing_effects(mine, rows),
            seconds=seconds,
            worker_logs=logs,
        )

    def _missing_effects(self, jobs, rows) -> list[str]:
        """Succeeded jobs whose last attempt did not leave all its steps."""
        from apps.jobs.choices import JobStatus

        counts: dict = {}
        for job, attempt, _pid, _at in rows:
            counts[(job, attempt)] = counts.get((job, attempt), 0) + 1
        missing = []
        for pk, attempt in jobs.filter(status=JobStatus.SUCCEEDED).values_list("pk", "attempt_count"):
            if counts.get((pk.hex, attempt), 0) != self.plan.steps:
                missing.append(f"{pk.hex} attempt {attempt + 1}: {counts.get((pk.hex, attempt), 0)} steps")
        return missing
