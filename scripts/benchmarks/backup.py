"""scripts/bench backup: backing up a site with a few thousand posts and a few
hundred MB of uploads, through the panel, against a plain dump-and-tar floor,
into an S3 server on loopback (moto's server, started here).

- full_s: time from ``POST /api/environments/{id}/backups`` (full) until its
  job succeeded (restic repository made, database and files streamed on the
  node into it);
- floor_s: in the same run, a plain script on the node: ``mariadb-dump`` of
  the database and ``tar`` of the release and ``shared/`` uploaded as two
  objects into the same bucket (no encryption, no deduplication, no checks);
- ratio: full_s / floor_s (goal <= 1.2);
- incremental_s, incremental_ratio: a second full backup of the unchanged
  site, and second / first (goal <= 0.2);
- restore_s: time from ``POST /api/environments/{id}/restore`` of the first
  backup until its job succeeded (read back and verified as it is unpacked
  and loaded, pre-restore backup beside, new release and database swapped in,
  health check, what was kept aside removed);
- restore_floor_s: in the same run, a plain script on the node downloading
  the floor's two objects, loading the dump into a fresh database and
  unpacking the tar into a fresh directory; restore_ratio: restore_s /
  restore_floor_s (goal <= 1.3); restore_run_s (the one node run up to the
  swaps: read back, verified while unpacked and loaded beside the live site,
  pre-restore backup beside, swapped in), restore_health_s, restore_cleanup_s:
  the restore job's own phases (from its log; their sum is the job's run
  time, restore_s also counts its dispatch); restore_followup_s: the
  restore_cleanup job the restore queued as it ended (what it kept aside for
  its way back removed; waited for before the floor, not in restore_s);
- operator_wait_s: BENCH_QUEUED_BACKUPS (default 50) small sites on the same
  node each get their scheduled backup queued (the scheduler's own
  ``enqueue_recurring``); once the first runs, an operator's health check of
  another site is queued: the time from its enqueue to its start. The
  scheduled backups still queued are then cancelled. scheduled_backup_s_p50
  is how long one of those scheduled backups took.

BENCH_POSTS (default 3000), BENCH_UPLOAD_MB (default 200) and
BENCH_QUEUED_BACKUPS set the sizes; BENCH_QUEUED_BACKUPS=0 leaves the queue
figure out.
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from scripts.benchmarks import node_support
from scripts.benchmarks.clone import fill
from scripts.benchmarks.queue import Workers, say

POSTS = int(os.environ.get("BENCH_POSTS", "3000"))
UPLOAD_MB = int(os.environ.get("BENCH_UPLOAD_MB", "200"))
QUEUED_BACKUPS = int(os.environ.get("BENCH_QUEUED_BACKUPS", "50"))
ACCESS_KEY_ID = "PRESSLUFTBENCHKEY"
SECRET_ACCESS_KEY = "pressluft-bench-secret-0123456789"
REGION = "eu-central-1"

# The floor, run on the node: two streams uploaded as they are made.
FLOOR_SCRIPT = r"""
import subprocess, sys, boto3
endpoint, bucket, prefix, database, root, release = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="%(region)s",
                  aws_access_key_id="%(key)s", aws_secret_access_key="%(secret)s")
for name, command in (
    ("database.sql", ["mariadb-dump", "--single-transaction", "--quick", database]),
    ("files.tar", ["tar", "--create", "--file=-", "--directory", root, "releases/" + release,
                   "shared/wp-config.php", "shared/uploads"]),
):
    producer = subprocess.Popen(command, stdout=subprocess.PIPE)
    s3.upload_fileobj(producer.stdout, bucket, prefix + name)
    if producer.wait() != 0:
        sys.exit(name + " failed")
""" % {"region": REGION, "key": ACCESS_KEY_ID, "secret": SECRET_ACCESS_KEY}


# The restore floor: the floor's two objects downloaded and loaded as they arrive.
RESTORE_FLOOR_SCRIPT = r"""
import shutil, subprocess, sys, boto3
endpoint, bucket, prefix, database, directory = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="%(region)s",
                  aws_access_key_id="%(key)s", aws_secret_access_key="%(secret)s")
subprocess.run(["mariadb", "-e", "CREATE DATABASE `" + database + "`"], check=True)
for name, command in (
    ("database.sql", ["mariadb", database]),
    ("files.tar", ["tar", "--extract", "--file=-", "--directory", directory]),
):
    consumer = subprocess.Popen(command, stdin=subprocess.PIPE)
    shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=prefix + name)["Body"], consumer.stdin, 1 << 20)
    consumer.stdin.close()
    if consumer.wait() != 0:
        sys.exit(name + " failed")
""" % {"region": REGION, "key": ACCESS_KEY_ID, "secret": SECRET_ACCESS_KEY}


class MotoServer:
    def __enter__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        binary = Path(sys.executable).parent / "moto_server"
        self.log = open(node_support.LOG_DIR / "moto.log", "wb")
        self.process = subprocess.Popen([str(binary if binary.exists() else shutil.which("moto_server")), "-H",
                                         "127.0.0.1", "-p", str(self.port)], stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        node_support.wait_until(self._up, 30)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def configure_storage(endpoint: str) -> str:
    from apps.core.models import PanelSettings

    panel = PanelSettings.load()
    panel.backup_s3_endpoint = endpoint
    panel.backup_s3_region = REGION
    panel.backup_s3_bucket = f"pressluft-bench-{uuid.uuid4().hex[:8]}"
    panel.backup_s3_prefix = "bench"
    panel.backup_s3_access_key_id = ACCESS_KEY_ID
    panel.backup_s3_secret_access_key = SECRET_ACCESS_KEY
    panel.save()
    return panel.backup_s3_bucket


def panel_backup(client, environment) -> tuple[float, object]:
    from apps.backups.models import Backup
    from apps.jobs.models import Job

    started = time.perf_counter()
    response = client.post(f"/api/environments/{environment.pk}/backups", {"backup_scope": "full"}, format="json")
    if response.status_code != 202:
        sys.exit(f"bench: backup answered {response.status_code}: {response.content!r}")
    job_id = response.json()["job_id"]
    node_support.wait_until(lambda: node_support.job_ended(job_id), 1800, interval=0.05)
    elapsed = time.perf_counter() - started
    job = Job.objects.get(pk=job_id)
    if job.status != "succeeded":
        sys.exit(f"bench: backup_create {job.status}: {job.error_code} {job.error_message}")
    show_steps(job)
    return elapsed, Backup.objects.get(pk=job.payload["backup_id"])


def show_steps(job) -> None:
    """BENCH_SHOW_STEPS=1: the job's log lines with their time since the job started."""
    if os.environ.get("BENCH_SHOW_STEPS"):
        say(f"  started {(job.started_at - job.created_at).total_seconds():.2f} s after the request")
        for line in job.log_lines.order_by("seq"):
            say(f"  {(line.created_at - job.started_at).total_seconds():6.2f} {line.message[:110]}")
        say(f"  ended {(job.finished_at - job.started_at).total_seconds():.2f} s after its start")


def floor(environment, endpoint: str, bucket: str) -> tuple[float, str]:
    from apps.environments import naming

    root = naming.root(environment)
    release = os.path.basename(os.path.realpath(f"{root}/current"))
    prefix = f"floor/{uuid.uuid4().hex[:8]}/"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, endpoint, bucket, prefix,
                    naming.system_name(environment), root, release], check=True)
    return time.perf_counter() - started, prefix


def restore_phases(job) -> dict:
    """The restore job's own phases from its log: restore (one node run: read
    back and verified as it is unpacked and loaded beside the live site, the
    pre-restore backup beside it, then swapped in), health check, cleanup
    (what was kept aside removed)."""
    marks = {"health": None, "healthy": None}
    for line in job.log_lines.order_by("seq"):
        if line.message == "health check of the restored site":
            marks["health"] = line.created_at
        elif line.message.endswith("; healthy"):
            marks["healthy"] = line.created_at
    if None in marks.values():
        return {}
    return {"run": (marks["health"] - job.started_at).total_seconds(),
            "health": (marks["healthy"] - marks["health"]).total_seconds(),
            "cleanup": (job.finished_at - marks["healthy"]).total_seconds()}


def panel_restore(client, environment, backup) -> tuple[float, dict]:
    from apps.jobs.models import Job

    started = time.perf_counter()
    response = client.post(f"/api/environments/{environment.pk}/restore", {"backup_id": str(backup.pk)},
                           format="json")
    if response.status_code != 202:
        sys.exit(f"bench: restore answered {response.status_code}: {response.content!r}")
    job_id = response.json()["job_id"]
    node_support.wait_until(lambda: node_support.job_ended(job_id), 1800, interval=0.05)
    elapsed = time.perf_counter() - started
    job = Job.objects.get(pk=job_id)
    if job.status != "succeeded":
        sys.exit(f"bench: env_restore {job.status}: {job.error_code} {job.error_message}")
    show_steps(job)
    phases = restore_phases(job)
    # What the restore kept aside goes in the site's next job (restore_cleanup): not the restore's time, but
    # waited for here so that the floor is not measured beside it.
    cleanup_id = job.result.get("cleanup_job_id")
    if cleanup_id:
        node_support.wait_until(lambda: node_support.job_ended(cleanup_id), 1800, interval=0.05)
        cleanup = Job.objects.get(pk=cleanup_id)
        if cleanup.status != "succeeded":
            sys.exit(f"bench: restore_cleanup {cleanup.status}: {cleanup.error_code} {cleanup.error_message}")
        show_steps(cleanup)
        phases["followup"] = (cleanup.finished_at - cleanup.started_at).total_seconds()
    return elapsed, phases


def restore_floor(endpoint: str, bucket: str, prefix: str) -> float:
    database = f"bench_restore_floor_{uuid.uuid4().hex[:8]}"
    directory = Path(f"/var/tmp/{database}")
    directory.mkdir(mode=0o700)
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", RESTORE_FLOOR_SCRIPT, endpoint, bucket, prefix, database,
                        str(directory)], check=True)
        return time.perf_counter() - started
    finally:
        subprocess.run(["mariadb", "-e", f"DROP DATABASE IF EXISTS `{database}`"], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def operator_wait(client, workers, other) -> tuple[float, list[float]]:
    """Sites with a scheduled backup queued each; an operator's job on another site waits for... how long?"""
    from apps.backups.models import BackupSchedule
    from apps.jobs import services as jobs
    from apps.jobs.choices import ACTIVE, JobStatus
    from apps.jobs.models import Job
    from apps.jobs.scheduler import enqueue_recurring
    from apps.sites import services as sites_services
    from django.utils import timezone

    start = (timezone.now() - timedelta(minutes=30)).time().replace(second=0, microsecond=0)
    sites = []
    for index in range(QUEUED_BACKUPS):
        # The workers run site_create (as they would any operator's job).
        created = sites_services.create_site(name=f"Queued {index}", slug=f"queued-{uuid.uuid4().hex[:8]}")
        node_support.wait_until(lambda: node_support.job_ended(created.pk), 300)
        created = Job.objects.get(pk=created.pk)
        if created.status != JobStatus.SUCCEEDED:
            sys.exit(f"bench: site_create {created.status}: {created.error_code} {created.error_message}")
        sites.append(created.site)
    say(f"{len(sites)} small sites made")
    for site in sites:
        BackupSchedule.objects.create(environment=site.environments.get(), enabled=True, window_start=start,
                                      window_hours=2)
    enqueue_recurring("backup_create")
    # The workers' own scheduler may have queued some of them a moment earlier: all count, once each.
    ids = list(Job.objects.filter(job_type="backup_create", site__in=sites).values_list("pk", flat=True))
    if len(ids) != QUEUED_BACKUPS:
        sys.exit(f"bench: the scheduler queued {len(ids)} backups, not {QUEUED_BACKUPS}")
    node_support.wait_until(lambda: Job.objects.filter(pk__in=ids, status=JobStatus.RUNNING).exists(), 300)
    response = client.post(f"/api/environments/{other.pk}/health-check")
    if response.status_code != 202:
        sys.exit(f"bench: health check answered {response.status_code}: {response.content!r}")
    job_id = response.json()["job_id"]
    node_support.wait_until(lambda: node_support.job_ended(job_id), 600)
    job = Job.objects.get(pk=job_id)
    waited = (job.started_at - job.created_at).total_seconds()
    for job in Job.objects.filter(pk__in=ids, status__in=ACTIVE):
        jobs.cancel_job(job.pk)
    node_support.wait_until(lambda: not Job.objects.filter(pk__in=ids, status__in=ACTIVE).exists(), 900)
    durations = [(job.finished_at - job.started_at).total_seconds()
                 for job in Job.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED)]
    ran = len(durations)
    say(f"operator job waited {waited:.2f} s; {ran} scheduled backup(s) had run meanwhile or finished, "
        f"{QUEUED_BACKUPS - ran} cancelled")
    for site in sites:
        delete = client.delete(f"/api/sites/{site.pk}?final_backup=false")
        delete_id = delete.json()["job_id"]
        node_support.wait_until(lambda: node_support.job_ended(delete_id), 300)
    return waited, durations


def main():
    node_support.setup_django()
    from apps.jobs import runner

    node_support.local_node()
    client = node_support.api_client()
    with MotoServer() as s3:
        bucket = configure_storage(s3.endpoint)
        production = node_support.created_site("Backup bench", "backup")
        fill(production)
        say(f"site: {POSTS} posts, {UPLOAD_MB} MB of uploads")
        with Workers("runworker", node_support.LOG_DIR) as workers:
            node_support.wait_for_worker(workers)
            first_s, first = panel_backup(client, production)
            say(f"full backup through the panel: {first_s:.2f} s ({first.size_bytes} bytes, {first.added_bytes} new)")
            floor_s, floor_prefix = floor(production, s3.endpoint, bucket)
            say(f"floor (dump + tar uploaded): {floor_s:.2f} s")
            second_s, second = panel_backup(client, production)
            say(f"second backup of the unchanged site: {second_s:.2f} s ({second.added_bytes} new)")
            restore_s, phases = panel_restore(client, production, first)
            say(f"restore of the first backup through the panel: {restore_s:.2f} s")
            restore_floor_s = restore_floor(s3.endpoint, bucket, floor_prefix)
            say(f"restore floor (download, load, unpack): {restore_floor_s:.2f} s")
            waited, durations = (operator_wait(client, workers, production) if QUEUED_BACKUPS else (None, []))
        # What the workers' scheduler queued meanwhile (a due restore drill, say) would hold the deletion back.
        from apps.jobs import services as jobs
        from apps.jobs.models import Job

        for leftover in Job.objects.filter(site_id=production.site_id, status="queued"):
            say(f"cancelled {leftover.job_type} queued by the scheduler")
            jobs.cancel_job(leftover.pk)
        response = client.delete(f"/api/sites/{production.site_id}?final_backup=false")
        if response.status_code != 202:
            active = list(Job.objects.filter(site_id=production.site_id, status__in=["queued", "running"])
                          .values_list("job_type", "status"))
            sys.exit(f"bench: deleting the bench site answered {response.status_code}: {response.content!r} {active}")
        runner.run_job(response.json()["job_id"])
    line = (f"BENCH backup posts={POSTS} upload_mb={UPLOAD_MB} full_s={first_s:.2f} floor_s={floor_s:.2f} "
            f"ratio={first_s / floor_s:.2f} incremental_s={second_s:.2f} incremental_ratio={second_s / first_s:.2f} "
            f"restore_s={restore_s:.2f} restore_floor_s={restore_floor_s:.2f} "
            f"restore_ratio={restore_s / restore_floor_s:.2f}")
    line += "".join(f" restore_{name}_s={seconds:.2f}" for name, seconds in phases.items())
    if waited is not None:
        p50 = f"{statistics.median(durations):.2f}" if durations else "none"
        line += (f" queued_scheduled_backups={QUEUED_BACKUPS} operator_wait_s={waited:.2f} "
                 f"scheduled_backup_s_p50={p50}")
    print(line, flush=True)


if __name__ == "__main__":
    main()
