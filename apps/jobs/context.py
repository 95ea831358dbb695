"""What a handler sees of its job: its parameters, a log, and safe points."""

import contextlib
import logging
import threading
import time

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection
from django.db.models import Max

from apps.jobs import services
from apps.jobs.choices import LogLevel
from apps.jobs.errors import JobCancelled, JobClaimLost, JobTimedOut
from apps.jobs.models import JobLogLine

logger = logging.getLogger(__name__)

# A handler's checkpoint() asks the database for a cancel request at most this often.
CANCEL_POLL_SECONDS = 0.5


class JobContext:
    """Passed to every handler.

    ``log()`` appends lines the live job view tails; ``step()`` names a stage;
    ``checkpoint()`` is a safe point where a cancel request, the timeout or
    a lost claim stops the handler. ``stop_event`` is set on any of them, for
    code that waits on remote work (the SSH layer kills the remote process
    when it is set).

    The claim is a lease: each heartbeat that reaches the database renews it
    for ``JOB_LEASE_SHARE`` of ``JOB_LOST_AFTER``. Once it runs out (a pause,
    a database out of reach) the run counts as lost here, before the sweeper
    may give the job to another worker: checkpoints stop it, the lease guard
    stops its remote program, and ``confirm_claim()`` (before every node
    program) refuses to start new work.
    """

    def __init__(self, claim):
        self.job = claim.job
        self.payload = claim.job.payload or {}
        self._claim = claim
        self._seq = (JobLogLine.objects.filter(job=self.job).aggregate(m=Max("seq"))["m"] or 0)
        self.stop_event = threading.Event()
        self.cancelled = threading.Event()
        self.timed_out = threading.Event()
        self.claim_lost = threading.Event()
        self.result: dict = {}
        self._started = time.monotonic()
        self._last_cancel_poll = 0.0
        self.lease_seconds = settings.JOB_LOST_AFTER * settings.JOB_LEASE_SHARE
        self._lease_until = self._started + self.lease_seconds

    # --- log ---------------------------------------------------------------
    def log(self, message: str, level: str = LogLevel.INFO) -> None:
        for _ in range(3):
            self._seq += 1
            try:
                JobLogLine.objects.create(job=self.job, seq=self._seq, level=level, message=str(message))
                return
            except IntegrityError:
                # A previous run of this job wrote lines meanwhile; continue after them.
                self._seq = JobLogLine.objects.filter(job=self.job).aggregate(m=Max("seq"))["m"] or 0

    @contextlib.contextmanager
    def step(self, name: str):
        self.checkpoint()
        self.log(name, LogLevel.STEP)
        started = time.monotonic()
        yield
        self.log(f"done: {name} ({time.monotonic() - started:.2f} s)")

    # --- the lease -----------------------------------------------------------
    def renew_lease(self, asked_at: float) -> None:
        """A heartbeat sent at ``asked_at`` (monotonic) reached the database."""
        self._lease_until = max(self._lease_until, asked_at + self.lease_seconds)

    def lease_expired(self) -> bool:
        return time.monotonic() > self._lease_until

    def lose_claim(self) -> None:
        self.claim_lost.set()
        self.stop_event.set()

    def confirm_claim(self) -> None:
        """Before node work: the lease holds and the database still names this run."""
        self.checkpoint()
        self._ask_database()
        if self.cancelled.is_set():
            raise JobCancelled()

    def _ask_database(self) -> None:
        """Whether the run is still the job's (else stop now) and a cancel was asked for."""
        self._last_cancel_poll = time.monotonic()
        ours, cancel = services.run_state(self.job.pk, self._claim.token)
        if not ours:
            self.lose_claim()
            raise JobClaimLost()
        if cancel:
            self.cancelled.set()
            self.stop_event.set()

    def fence(self) -> dict:
        """What the node's own lock needs to know of this run (apps/nodes/remote/node_lock.py)."""
        job = self.job
        if job.environment_id:
            scope = [("node", job.node_id, "shared"), ("site", job.site_id, "shared"),
                     ("environment", job.environment_id, "exclusive")]
        elif job.site_id:
            scope = [("node", job.node_id, "shared"), ("site", job.site_id, "exclusive")]
        else:
            scope = [("node", job.node_id, "exclusive")]
        locks = [[f"{kind}-{key.hex}", mode] for kind, key, mode in scope if key is not None]
        return {"job": job.pk.hex, "attempt": job.attempt_count, "locks": locks, "wait": settings.NODE_LOCK_WAIT}

    # --- safe points -------------------------------------------------------
    def checkpoint(self) -> None:
        if not self.claim_lost.is_set() and self.lease_expired():
            self.lose_claim()
        if self.claim_lost.is_set():
            raise JobClaimLost()
        if self.timed_out.is_set() or self.elapsed() > self.job.timeout_seconds:
            self.timed_out.set()
            raise JobTimedOut()
        if not self.cancelled.is_set() and time.monotonic() - self._last_cancel_poll >= CANCEL_POLL_SECONDS:
            self._ask_database()
        if self.cancelled.is_set():
            raise JobCancelled()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once for a cancel or the timeout."""
        deadline = time.monotonic() + seconds
        while True:
            self.checkpoint()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.stop_event.wait(min(remaining, CANCEL_POLL_SECONDS))


class Heartbeat(threading.Thread):
    """Writes the job's heartbeat while the handler runs and relays cancel
    requests, the timeout and a lost claim to the context."""

    def __init__(self, context: JobContext, interval: float):
        super().__init__(name=f"heartbeat-{context.job.pk}", daemon=True)
        self.context = context
        self.interval = interval
        self._done = threading.Event()

    def run(self):
        claim = self.context._claim
        try:
            while not self._done.wait(self.interval):
                asked_at = time.monotonic()
                try:
                    ours, cancel = services.heartbeat(claim.job.pk, claim.token)
                except Exception:  # noqa: BLE001 - a missed beat is retried on the next tick
                    logger.exception("heartbeat for job %s failed", claim.job.pk)
                    close_old_connections()
                    continue
                if not ours:
                    self.context.lose_claim()
                    return
                self.context.renew_lease(asked_at)
                if cancel:
                    self.context.cancelled.set()
                    self.context.stop_event.set()
                if self.context.elapsed() > claim.job.timeout_seconds:
                    self.context.timed_out.set()
                    self.context.stop_event.set()
        finally:
            connection.close()

    def stop(self):
        self._done.set()
        self.join(timeout=self.interval + 5)


class LeaseGuard(threading.Thread):
    """Stops the run when its lease runs out, even while the heartbeat thread
    waits on an unreachable database: setting ``stop_event`` makes the SSH
    layer kill the remote program."""

    def __init__(self, context: JobContext):
        super().__init__(name=f"lease-{context.job.pk}", daemon=True)
        self.context = context
        self._done = threading.Event()

    def run(self):
        tick = min(1.0, self.context.lease_seconds / 4)
        while not self._done.wait(tick):
            if self.context.lease_expired():
                logger.warning("job %s: lease expired, stopping this run", self.context.job.pk)
                self.context.lose_claim()
                return

    def stop(self):
        self._done.set()
        self.join(timeout=5)
