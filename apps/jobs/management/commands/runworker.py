import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections
from django_q.cluster import Cluster

from apps.jobs.registry import load_handlers, registered_job_types
from apps.jobs.scheduler import ensure_schedules, sweep

logger = logging.getLogger("apps.jobs.worker")

# How long a sentinel that got the same SIGTERM as we did may take to die.
SENTINEL_DEATH_GRACE = 1.0


class Command(BaseCommand):
    help = "Run the job worker: a django-q2 cluster plus the sweeper that recovers lost jobs."

    def handle(self, *args, **options):
        load_handlers()
        ensure_schedules()
        self.stdout.write(f"job types: {', '.join(registered_job_types()) or '(none)'}")
        # The cluster forks its processes from this one: a connection open here
        # would be shared with them, and the first child to close it would end
        # the server session under our feet (every sweep then fails).
        connections.close_all()
        cluster = Cluster()
        # Cluster() stops the cluster right inside its signal handler; ours only
        # notes the request, and the loop below decides how to stop.
        stop_requested = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop_requested.set())
        cluster.start()
        interval = settings.JOB_SWEEP_INTERVAL
        next_sweep = time.monotonic()
        while cluster.sentinel.is_alive() and not stop_requested.is_set():
            if time.monotonic() >= next_sweep:
                # Drops a connection that broke or outlived CONN_MAX_AGE, so
                # one database hiccup does not fail every later sweep.
                close_old_connections()
                try:
                    summary = sweep()
                    if summary["lost"] or summary["overdue"]:
                        logger.warning("sweep: %s", summary)
                except Exception:  # noqa: BLE001 - the next sweep tries again
                    logger.exception("sweep failed")
                next_sweep = time.monotonic() + interval
            time.sleep(0.2)
        if stop_requested.is_set():
            self._stop(cluster)
        self.stdout.write("worker stopped")

    def _stop(self, cluster):
        # A SIGTERM sent to the whole process group (kill -TERM -PGID, a
        # service manager) reaches django-q2's sentinel too, which dies of it
        # at once. Telling a dead sentinel to stop blocks forever (its stop
        # event waits for the dead process to acknowledge), so only a live one
        # is stopped; SIGINT (Ctrl-C) and a SIGTERM to this process alone
        # leave it alive, and it stops its workers cleanly.
        cluster.sentinel.join(SENTINEL_DEATH_GRACE)
        if cluster.sentinel.is_alive():
            cluster.stop()
