import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.cluster import Cluster

from apps.jobs.registry import load_handlers, registered_job_types
from apps.jobs.scheduler import ensure_schedules, sweep

logger = logging.getLogger("apps.jobs.worker")


class Command(BaseCommand):
    help = "Run the job worker: a django-q2 cluster plus the sweeper that recovers lost jobs."

    def handle(self, *args, **options):
        load_handlers()
        ensure_schedules()
        self.stdout.write(f"job types: {', '.join(registered_job_types()) or '(none)'}")
        cluster = Cluster()
        cluster.start()
        interval = settings.JOB_SWEEP_INTERVAL
        next_sweep = time.monotonic()
        # Cluster installs SIGINT/SIGTERM handlers that stop the sentinel; we
        # leave when it is gone.
        while cluster.sentinel.is_alive():
            if time.monotonic() >= next_sweep:
                try:
                    summary = sweep()
                    if summary["lost"] or summary["overdue"]:
                        logger.warning("sweep: %s", summary)
                except Exception:  # noqa: BLE001 - the next sweep tries again
                    logger.exception("sweep failed")
                next_sweep = time.monotonic() + interval
            time.sleep(0.2)
        self.stdout.write("worker stopped")
