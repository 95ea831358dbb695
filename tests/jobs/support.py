"""Helpers for the job queue tests: reading from another connection, the
django-q2 messages sent, real worker processes, and the runs handlers record."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection, connections

REPO_DIR = Path(settings.BASE_DIR)


def database_url_of_tests() -> str:
    """DATABASE_URL of the database this test process uses (pytest-django's test_… copy)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


def dispatched_job_ids() -> list[str]:
    """Job ids of the "look at job X" messages waiting in django-q2's ORM queue, oldest first."""
    from django_q.models import OrmQ

    return [message.task["args"][0] for message in OrmQ.objects.order_by("id")]


def clear_dispatched() -> None:
    from django_q.models import OrmQ

    OrmQ.objects.all().delete()


def in_other_connection(fn):
    """Run fn in a thread with its own database connection: it sees only what is committed."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class InThread:
    """Runs fn(*args) in a thread with its own connection; ``result()`` waits for it."""

    def __init__(self, fn, *args):
        self._outcome = {}
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in result()
            self._outcome["error"] = exc
        finally:
            connections.close_all()

    def result(self, timeout):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"still running after {timeout} s")
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]


def wait_until(predicate, timeout: float, describe, interval: float = 0.1):
    """Poll predicate until it returns something true; on timeout fail with describe()."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s: {describe()}")
        time.sleep(interval)


def status_counts(jobs) -> dict:
    from django.db.models import Count

    from apps.jobs.models import Job

    rows = Job.objects.filter(pk__in=[job.pk for job in jobs]).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


class WorkerProcesses:
    """``manage.py runworker`` processes (each a django-q2 cluster plus the sweeper),
    each in its own session so that everything it forked can be killed at once."""

    def __init__(self, log_dir: Path, database_url: str, count: int, env: dict):
        self.log_dir = Path(log_dir)
        self.count = count
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pressluft.settings_test",
            "DATABASE_URL": database_url,
            # django-q2 signs its messages with the secret key: workers need ours.
            "PRESSLUFT_SECRET_KEY": settings.SECRET_KEY,
            "PRESSLUFT_DATA_DIR": str(settings.DATA_DIR),
            "PYTHONUNBUFFERED": "1",
            **{key: str(value) for key, value in env.items()},
        }
        self.processes: list[subprocess.Popen] = []

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            with open(self.log_dir / f"worker-{index}.log", "wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "runworker"],
                        cwd=REPO_DIR,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def stop(self, grace: float = 10.0):
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of each session (a stuck or orphaned child) goes too.
        for process in self.processes:
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')}" for path in sorted(self.log_dir.glob("*.log"))
        )

    def tail(self, lines: int = 25) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)


def _signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


RUN_LINE = re.compile(r"^(start|end) (\d+)")


def runs_from_log(lines) -> dict:
    """(job id, message) rows in log order -> job id -> [(start_ns, end_ns), ...],
    from the lines test_record writes."""
    runs = defaultdict(list)
    open_starts = {}
    for job_id, message in lines:
        match = RUN_LINE.match(message)
        if not match:
            continue
        if match.group(1) == "start":
            open_starts[job_id] = int(match.group(2))
        elif job_id in open_starts:
            runs[job_id].append((open_starts.pop(job_id), int(match.group(2))))
    return runs


def recorded_runs(jobs) -> dict:
    from apps.jobs.models import JobLogLine

    lines = JobLogLine.objects.filter(job__in=[job.pk for job in jobs]).order_by("job", "seq")
    return runs_from_log(lines.values_list("job_id", "message"))


def find_overlaps(scopes, runs) -> list[str]:
    """scopes: job id -> (site id, node id); runs: job id -> [(start_ns, end_ns)].
    Every pair of runs that overlapped on one site or one node."""
    by_scope = defaultdict(list)
    for job_id, (site_id, node_id) in scopes.items():
        for start, end in runs.get(job_id, []):
            if site_id:
                by_scope[("site", site_id)].append((start, end, job_id))
            if node_id:
                by_scope[("node", node_id)].append((start, end, job_id))
    overlaps = []
    for scope, scope_runs in by_scope.items():
        scope_runs.sort()
        for (_, end, first), (start, _, second) in zip(scope_runs, scope_runs[1:]):
            if start < end:
                overlaps.append(
                    f"{scope[0]} {scope[1]}: job {second} started {(end - start) / 1e6:.3f} ms "
                    f"before job {first} ended"
                )
    return overlaps


def overlapping_runs(jobs) -> list[str]:
    return find_overlaps({job.pk: (job.site_id, job.node_id) for job in jobs}, recorded_runs(jobs))


def database_url_through(url: str, port: int, host: str = "127.0.0.1") -> str:
    """The same database URL, reached at host:port instead (a TcpProxy in front of it)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"))


class TcpProxy:
    """A relay on loopback in front of a TCP service (PostgreSQL here) that a
    test can cut, as a network would cut a worker off from its database.

    ``cut()`` drops every connection and refuses new ones (the worker's driver
    sees errors at once); ``cut(silently=True)`` keeps the worker's sockets
    open but forwards nothing any more and answers no new connection (the
    worker waits on reads that never return, as behind a lost route). Either
    way the service side is closed, so the server ends those sessions and
    their locks, as it would notice a vanished client."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_at_ns: int | None = None
        self._silent = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self.cut_at_ns is not None:
                    # Silent: left unanswered (never closed until the proxy stops); else refused.
                    (self._held.append if self._silent else _close)(client)
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=10)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data or self.cut_at_ns is not None:
                if self.cut_at_ns is None or not self._silent:
                    _close(sink)
                if not data:
                    return
                continue  # cut silently: swallowed
            try:
                sink.sendall(data)
            except OSError:
                _close(source)
                return

    def cut(self, silently: bool = False) -> None:
        with self._lock:
            self._silent = silently
            self.cut_at_ns = time.time_ns()
            upstream_side = self._sockets[1::2]
            client_side = self._sockets[0::2]
            for sock in upstream_side:
                _close(sock)
            if not silently:
                for sock in client_side:
                    _close(sock)
                self.listener.close()
            else:
                self._held += client_side

    def stop(self) -> None:
        with self._lock:
            self.cut_at_ns = self.cut_at_ns or time.time_ns()
            for sock in self._sockets + self._held:
                _close(sock)
            _close(self.listener)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def effect_lines(path: Path) -> list[tuple]:
    """The lines a fenced test handler appended to ``path``: (job hex, attempt, pid, wall clock ns)."""
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[0], int(parts[1]), int(parts[2]), int(parts[3])))
    return rows


def effect_spans(rows) -> dict:
    """(job hex, attempt) -> (first effect ns, last effect ns)."""
    spans = {}
    for job, attempt, _pid, at in rows:
        first, last = spans.get((job, attempt), (at, at))
        spans[(job, attempt)] = (min(first, at), max(last, at))
    return spans


def interleaved_effects(scopes, rows) -> list[str]:
    """scopes: job hex -> (site id, node id). Every pair of runs (a job's attempt)
    whose side effects interleaved on one site or one node: the first effect of
    one came before the last effect of another that had started earlier."""
    by_scope = defaultdict(list)
    for (job, attempt), (first, last) in effect_spans(rows).items():
        site_id, node_id = scopes[job]
        for scope in (("site", site_id), ("node", node_id)):
            if scope[1]:
                by_scope[scope].append((first, last, f"{job} attempt {attempt + 1}"))
    found = []
    for scope, spans in by_scope.items():
        spans.sort()
        latest_end, latest_run = None, None
        for first, last, run in spans:
            if latest_end is not None and first < latest_end:
                found.append(f"{scope[0]} {scope[1]}: {run} began {(latest_end - first) / 1e6:.3f} ms "
                             f"before {latest_run} had done its last")
            if latest_end is None or last > latest_end:
                latest_end, latest_run = last, run
    return found
