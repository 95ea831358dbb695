"""The embedded default (SQLite): a worker cluster and the panel writing at
the same time never hit "database is locked", and every job succeeds with no
overlapping runs."""

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from django.conf import settings

from tests.jobs.support import REPO_DIR, WorkerProcesses, find_overlaps, runs_from_log, wait_until

pytestmark = pytest.mark.cluster

JOBS = 100


def _query(path, sql):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql).fetchall()


def test_worker_and_panel_write_to_sqlite_at_once(tmp_path):
    database = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pressluft.settings_test",
        "DATABASE_URL": f"sqlite:///{database}",
        "PRESSLUFT_DATA_DIR": str(tmp_path / "data"),
        "PRESSLUFT_SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    workers = WorkerProcesses(
        tmp_path / "workers",
        env["DATABASE_URL"],
        1,
        {"PRESSLUFT_DATA_DIR": env["PRESSLUFT_DATA_DIR"], "PRESSLUFT_WORKERS": 2, "PRESSLUFT_JOB_SWEEP_INTERVAL": 1},
    )
    workers.start()
    try:
        time.sleep(1)  # let the cluster come up, so both sides really write at once
        panel = subprocess.run(
            [sys.executable, "-m", "tests.jobs.panel_writer", str(JOBS)],
            cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=300,
        )
        assert panel.returncode == 0, panel.stdout + panel.stderr

        def counts():
            return dict(_query(database, "SELECT status, COUNT(*) FROM jobs_job GROUP BY status"))

        wait_until(
            lambda: sum(counts().get(s, 0) for s in ("succeeded", "failed", "cancelled")) == JOBS,
            180,
            lambda: f"jobs by status: {counts()}\n{workers.tail()}",
            interval=0.5,
        )
    finally:
        workers.stop()

    output = panel.stdout + panel.stderr + workers.logs()
    assert "database is locked" not in output
    assert "Traceback" not in output, workers.tail(60)
    assert counts() == {"succeeded": JOBS}
    ((first_finished, last_created),) = _query(database, "SELECT MIN(finished_at), MAX(created_at) FROM jobs_job")
    assert first_finished < last_created, "jobs ran while the panel was still writing"
    scopes = {job: (site, node) for job, site, node in _query(database, "SELECT id, site_id, node_id FROM jobs_job")}
    runs = runs_from_log(_query(database, "SELECT job_id, message FROM jobs_joblogline ORDER BY job_id, seq"))
    assert len(runs) == JOBS
    assert find_overlaps(scopes, runs) == []
