"""The node's own fence (apps/nodes/remote/node_lock.py), with real programs
on this machine: one program per environment, site or node scope at a time,
a waiting program gives up with node_busy, and a stale attempt of a job
refuses to start once a newer one has run."""

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings

NODE_LIB = Path(settings.BASE_DIR) / "apps" / "nodes" / "remote"
PROGRAM = f"""
import sys, time
sys.path.insert(0, {str(NODE_LIB)!r})
from nodelib import main

def handler(params):
    with open(params["record"], "a") as record:
        record.write(f"start {{params['name']}} {{time.monotonic()}}\\n")
    time.sleep(params["hold"])
    with open(params["record"], "a") as record:
        record.write(f"end {{params['name']}} {{time.monotonic()}}\\n")
    return {{"name": params["name"]}}

main(handler)
"""


class Scope:
    """Ids of one node with one site and two environments, fresh per test."""

    def __init__(self):
        self.node, self.site, self.env_a, self.env_b = (uuid.uuid4().hex for _ in range(4))

    def environment(self, env):
        return [[f"node-{self.node}", "shared"], [f"site-{self.site}", "shared"], [f"environment-{env}", "exclusive"]]

    def whole_node(self):
        return [[f"node-{self.node}", "exclusive"]]


def start(tmp_path, name, locks, *, job=None, attempt=0, hold=1.0, wait=30):
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    params = {"name": name, "hold": hold, "record": str(tmp_path / "record"),
              "fence": {"job": job or uuid.uuid4().hex, "attempt": attempt, "locks": locks, "wait": wait}}
    process = subprocess.Popen([sys.executable, str(program)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    process.stdin.write(json.dumps(params))
    process.stdin.close()
    return process


def outcome(process) -> str:
    lines = process.stdout.read().rstrip("\n").split("\n")
    process.wait(timeout=60)
    return lines[-1]


def intervals(tmp_path) -> dict:
    spans: dict = {}
    for line in (tmp_path / "record").read_text().splitlines():
        kind, name, at = line.split()
        spans.setdefault(name, {})[kind] = float(at)
    return spans


def overlap(a, b) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def wait_for_start(tmp_path, name):
    for _ in range(200):
        if (tmp_path / "record").exists() and f"start {name} " in (tmp_path / "record").read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never started")


def test_programs_of_one_environment_run_one_after_the_other(tmp_path):
    scope = Scope()
    first = start(tmp_path, "first", scope.environment(scope.env_a), hold=1.5)
    wait_for_start(tmp_path, "first")
    second = start(tmp_path, "second", scope.environment(scope.env_a), hold=0.2)
    assert outcome(first).startswith("RESULT") and outcome(second).startswith("RESULT")
    spans = intervals(tmp_path)
    assert spans["second"]["start"] >= spans["first"]["end"], spans


def test_programs_of_two_environments_run_side_by_side(tmp_path):
    scope = Scope()
    first = start(tmp_path, "first", scope.environment(scope.env_a), hold=1.5)
    wait_for_start(tmp_path, "first")
    second = start(tmp_path, "second", scope.environment(scope.env_b), hold=0.2)
    assert outcome(first).startswith("RESULT") and outcome(second).startswith("RESULT")
    spans = intervals(tmp_path)
    assert overlap(spans["first"], spans["second"]), spans


def test_a_node_wide_program_waits_for_environment_programs_and_they_for_it(tmp_path):
    scope = Scope()
    environment = start(tmp_path, "environment", scope.environment(scope.env_a), hold=1.0)
    wait_for_start(tmp_path, "environment")
    provision = start(tmp_path, "provision", scope.whole_node(), hold=1.0)
    time.sleep(0.3)
    later = start(tmp_path, "later", scope.environment(scope.env_b), hold=0.1)
    for process in (environment, provision, later):
        assert outcome(process).startswith("RESULT")
    spans = intervals(tmp_path)
    assert not overlap(spans["environment"], spans["provision"]), spans
    assert not overlap(spans["provision"], spans["later"]), spans


def test_a_program_that_waits_too_long_fails_retryably_naming_the_holder(tmp_path):
    scope = Scope()
    holder_job = uuid.uuid4().hex
    holder = start(tmp_path, "holder", scope.environment(scope.env_a), job=holder_job, attempt=1, hold=2.0)
    wait_for_start(tmp_path, "holder")
    waiting = start(tmp_path, "waiting", scope.environment(scope.env_a), hold=0.1, wait=0.5)
    line = outcome(waiting)
    assert line.startswith("ERROR node_busy 1 "), line
    assert f"job {holder_job} attempt 2" in line, line
    assert outcome(holder).startswith("RESULT")
    assert "waiting" not in intervals(tmp_path)


def test_a_stale_attempt_of_a_job_refuses_to_start_after_a_newer_one(tmp_path):
    scope = Scope()
    job = uuid.uuid4().hex
    rerun = start(tmp_path, "rerun", scope.environment(scope.env_a), job=job, attempt=1, hold=0.1)
    assert outcome(rerun).startswith("RESULT")
    stale = start(tmp_path, "stale", scope.environment(scope.env_a), job=job, attempt=0, hold=0.1)
    line = outcome(stale)
    assert line.startswith("ERROR claim_stale 0 "), line
    assert "stale" not in intervals(tmp_path)
    # The same attempt again (a program after another of one run) is fine.
    again = start(tmp_path, "again", scope.environment(scope.env_a), job=job, attempt=1, hold=0.1)
    assert outcome(again).startswith("RESULT")


def test_a_malformed_fence_is_refused_before_anything_runs(tmp_path):
    scope = Scope()
    bad = start(tmp_path, "bad", [[f"environment-{scope.env_a}/../x", "exclusive"]], hold=0.1)
    line = outcome(bad)
    assert line.startswith("ERROR remote_step_failed 0 fence:"), line
    assert not (tmp_path / "record").exists()


CONFIG_PROGRAM = f"""
import sys, time
sys.path.insert(0, {str(NODE_LIB)!r})
from pathlib import Path
import node_lock

name, record, directory = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with node_lock.shared_config(directory):
    with node_lock.shared_config(directory):  # nested: held once
        with open(record, "a") as out:
            out.write(f"start {{name}} {{time.monotonic()}}\\n")
        time.sleep(0.8)
        with open(record, "a") as out:
            out.write(f"end {{name}} {{time.monotonic()}}\\n")
"""


def test_changes_to_the_nodes_configuration_are_made_one_program_at_a_time(tmp_path):
    program = tmp_path / "config.py"
    program.write_text(CONFIG_PROGRAM)
    locks = tmp_path / "locks"
    processes = [subprocess.Popen([sys.executable, str(program), name, str(tmp_path / "record"), str(locks)])
                 for name in ("first", "second", "third")]
    assert [process.wait(timeout=30) for process in processes] == [0, 0, 0]
    spans = sorted(intervals(tmp_path).values(), key=lambda span: span["start"])
    assert all(later["start"] >= earlier["end"] for earlier, later in zip(spans, spans[1:])), spans
