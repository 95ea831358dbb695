"""Which baseline an environment gets: a copy of a copy inherits its
source's; a re-run of env_create keeps the one its earlier attempt took (it
is older than any copy the job made, so it can only over-report drift);
asking for a check without a baseline, or on production, is refused with
nothing queued. (Baselines measured on the node: tests/sites/test_drift_e2e.py.)"""

import contextlib
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import ApiError
from apps.environments import drift, jobs, services
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.environments.models import DriftBaseline
from apps.jobs.models import Job


class Ctx:
    """What _record_baseline uses of a job's context."""

    def __init__(self):
        self.lines = []

    @contextlib.contextmanager
    def step(self, text):
        self.lines.append(text)
        yield

    def log(self, text, level=None):
        self.lines.append(text)

    def checkpoint(self):
        pass


@pytest.fixture
def staging(site_with_production):
    site, production = site_with_production
    return EnvironmentFactory(site=site, node=production.node, slug="staging",
                              environment_type=EnvironmentType.STAGING, source_environment=production)


def test_a_copy_of_a_copy_inherits_its_sources_baseline(staging):
    taken = timezone.now() - timedelta(days=2)
    original = DriftBaseline.objects.create(environment=staging, measured_environment=staging.source_environment,
                                            origin="clone", checksums={"tables": {"wp_options": {}}}, taken_at=taken)
    copy = EnvironmentFactory(site=staging.site, node=staging.node, slug="copy",
                              environment_type=EnvironmentType.CLONE, source_environment=staging)
    inherited = drift.record_baseline(copy, staging)
    assert (inherited.origin, inherited.taken_at, inherited.checksums) == ("inherited", taken, original.checksums)
    assert inherited.measured_environment_id == staging.source_environment_id
    # A source without a baseline has nothing to hand on.
    bare = EnvironmentFactory(site=staging.site, node=staging.node, slug="bare",
                              environment_type=EnvironmentType.CLONE, source_environment=None)
    assert drift.record_baseline(bare, bare) is None


def test_a_rerun_of_env_create_keeps_the_earlier_baseline(staging):
    earlier = DriftBaseline.objects.create(environment=staging, measured_environment=staging.source_environment,
                                           origin="clone", checksums={}, taken_at=timezone.now())
    ctx = Ctx()
    # Production as the source would be measured on the node; the earlier baseline stops that.
    jobs._record_baseline(ctx, staging, staging.source_environment)
    assert list(DriftBaseline.objects.filter(environment=staging)) == [earlier]
    assert any("of an earlier attempt kept" in line for line in ctx.lines)


def test_checks_without_a_baseline_or_on_production_are_refused(staging):
    for environment in (staging, staging.source_environment):
        with pytest.raises(ApiError) as refused:
            services.request_drift_check(environment.pk)
        assert refused.value.code == "drift_no_baseline"
    assert not Job.objects.exists()
