import pytest

from tests.jobs.support import WorkerProcesses, database_url_of_tests


@pytest.fixture
def make_site(db):
    """make_site(node=None) -> (site, production environment on that node)."""
    from apps.environments.factories import EnvironmentFactory
    from apps.nodes.factories import NodeFactory
    from apps.sites.factories import SiteFactory

    def make(node=None):
        node = node or NodeFactory()
        site = SiteFactory()
        environment = EnvironmentFactory(site=site, node=node, slug="production")
        return site, environment

    return make


@pytest.fixture
def start_workers(transactional_db, tmp_path):
    """start_workers(count, **env) starts real ``runworker`` processes on the
    test database; all of them are stopped when the test ends, pass or fail."""
    started = []

    def start(count=1, **env):
        workers = WorkerProcesses(tmp_path / f"workers-{len(started)}", database_url_of_tests(), count, env)
        started.append(workers)
        workers.start()
        return workers

    yield start
    for workers in started:
        workers.stop()
