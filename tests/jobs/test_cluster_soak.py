"""The soak in the suite: a few hundred short jobs over 12 sites on 4 nodes
through 4 worker processes, three of them killed (SIGKILL) and two paused
(SIGSTOP) for longer than the lost-worker limit while jobs run. Judged from
the jobs' side effects outside the database: every job ends, no two runs'
effects interleave on one site or one node. ``scripts/bench soak`` runs the
same with 10,000 jobs."""

import pytest

from apps.jobs.choices import JobStatus
from tests.jobs.soak import Soak, SoakPlan
from tests.jobs.support import database_url_of_tests

pytestmark = pytest.mark.cluster


def test_soak_every_job_ends_and_no_runs_overlap(transactional_db, tmp_path):
    plan = SoakPlan(jobs=300, sites=12, nodes=4, workers=4, kills=3, pauses=2, lost_after=4, pause_seconds=6,
                    timeout=150, seed=20240610)
    result = Soak(plan, tmp_path, database_url_of_tests(), env={"DJANGO_SETTINGS_MODULE": "pressluft.settings_test"},
                  say=print).run()
    print(f"soak {result.summary()} in {result.seconds:.1f} s ({result.jobs_per_s:.1f} jobs/s), {result.statuses}")

    described = f"{result.summary()} statuses {result.statuses}\n{result.worker_logs}"
    assert result.lost == 0, described
    assert (result.kills, result.pauses) == (plan.kills, plan.pauses), described
    assert result.overlaps == [], described
    assert result.statuses == {JobStatus.SUCCEEDED: plan.jobs}, described
    assert result.missing_effects == [], described
