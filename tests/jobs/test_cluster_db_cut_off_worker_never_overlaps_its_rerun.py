"""A worker cut off from the database (a TCP proxy between it and PostgreSQL
that the test cuts) while its job's program runs on the node: its lease runs
out, so it kills its remote program before the sweeper — in a worker that
still reaches the database — may run the job again. Judged from what the
programs did on the node (a file they append to), not from the database."""

import os

import pytest
from django.db import connection

from apps.jobs import services
from apps.jobs.choices import JobStatus
from apps.jobs.models import JobLogLine
from apps.nodes import keys, ssh
from apps.nodes.factories import NodeFactory
from tests.jobs.support import TcpProxy, database_url_of_tests, database_url_through, effect_lines, wait_until
from tests.nodes.fixtures import node_sshd, panel_key  # noqa: F401 - fixtures

pytestmark = pytest.mark.cluster

LOST_AFTER = 4
QUEUE = dict(PRESSLUFT_WORKERS=2, PRESSLUFT_JOB_SWEEP_INTERVAL=1, PRESSLUFT_JOB_LOST_AFTER=LOST_AFTER,
             PRESSLUFT_JOB_HEARTBEAT_INTERVAL=1)
TICKS, INTERVAL = 40, 0.25


@pytest.fixture
def ssh_node(transactional_db, node_sshd, panel_key):  # noqa: F811 - fixtures
    """This machine as a node over the loopback sshd (not provisioned: the job's program needs only python3)."""
    probe = ssh.Connection(ssh.Target("probe", "127.0.0.1", node_sshd.port, "root", ""), keys.private_key()).open()
    probe.close()
    return NodeFactory(ssh_port=node_sshd.port, host_key=probe.server_host_key)


@pytest.fixture
def proxy():
    db = connection.settings_dict
    relay = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    yield relay
    relay.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("silently", [False, True], ids=["connections-refused", "connections-silent"])
def test_a_worker_cut_off_from_the_database_stops_its_node_program_before_the_rerun(
        make_site, start_workers, ssh_node, proxy, tmp_path, silently):
    cut_off = start_workers(1, DATABASE_URL=database_url_through(database_url_of_tests(), proxy.port), **QUEUE)
    _site, environment = make_site(node=ssh_node)
    effects = tmp_path / "effects"
    job = services.enqueue_job("test_remote_ticks", environment=environment,
                               payload={"path": str(effects), "ticks": TICKS, "interval": INTERVAL})
    workers = [cut_off]

    def describe():
        job.refresh_from_db()
        log = "\n".join(f"{line.created_at:%H:%M:%S.%f} {line.message}" for line in JobLogLine.objects.filter(job=job))
        cut = f"cut at {proxy.cut_at_ns}\n" if proxy.cut_at_ns else ""
        return (f"job {job.status} attempt {job.attempt_count} {job.error_code}\n{cut}effects {effect_lines(effects)}\n"
                f"{log}\n" + "\n".join(w.tail() for w in workers))

    wait_until(lambda: len(effect_lines(effects)) >= 4, 60, describe)  # a second into the program
    proxy.cut(silently=silently)
    # The sweeper and the rerun: a worker that still reaches the database.
    workers.append(start_workers(1, **QUEUE))

    wait_until(lambda: job.refresh_from_db() or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 90,
               describe, interval=0.2)
    assert (job.status, job.attempt_count) == (JobStatus.SUCCEEDED, 1), describe()
    rows = effect_lines(effects)
    stale = [(pid, at) for _, attempt, pid, at in rows if attempt == 0]
    rerun = [at for _, attempt, _, at in rows if attempt == 1]
    assert len(rerun) == TICKS, describe()
    assert max(at for _, at in stale) < min(rerun), f"the cut-off run's program went on beside the rerun: {describe()}"
    # Stopped by its own worker's lease, before the sweeper could even count the job lost.
    assert max(at for _, at in stale) < proxy.cut_at_ns + LOST_AFTER * 1e9, describe()
    assert len(stale) < TICKS - 4, describe()
    stale_program = {pid for pid, _ in stale}
    assert len(stale_program) == 1 and not alive(stale_program.pop()), "the stale program was killed on the node"
