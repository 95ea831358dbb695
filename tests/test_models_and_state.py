"""Invariants the database keeps, and optimistic concurrency on state changes."""

import uuid

import pytest
from django.db import IntegrityError, transaction

from apps.core.errors import ApiError
from apps.core.models import PanelSettings
from apps.core.state import change_state
from apps.environments.choices import EnvironmentType
from apps.environments.factories import EnvironmentFactory
from apps.jobs.factories import JobFactory
from apps.sites.factories import SiteFactory
from apps.sites.models import Site


def test_change_state_bumps_version_and_refuses_a_stale_one(db):
    site = SiteFactory()
    stale_copy = Site.objects.get(pk=site.pk)
    change_state(site, status="failed")
    assert site.state_version == 2
    with pytest.raises(ApiError) as error:
        change_state(stale_copy, status="active")
    assert error.value.code == "conflict"
    site.refresh_from_db()
    assert (site.status, site.state_version) == ("failed", 2)


def test_one_production_environment_per_site(node):
    site = SiteFactory()
    EnvironmentFactory(site=site, node=node, slug="production")
    with pytest.raises(IntegrityError), transaction.atomic():
        EnvironmentFactory(site=site, node=node, slug="production-2")
    EnvironmentFactory(site=site, node=node, slug="staging", environment_type=EnvironmentType.STAGING)


def test_site_slugs_are_unique(db):
    SiteFactory(slug="acme")
    with pytest.raises(IntegrityError), transaction.atomic():
        SiteFactory(slug="acme")


@pytest.mark.parametrize(
    "make",
    [
        lambda node: SiteFactory(status="exploded"),
        lambda node: EnvironmentFactory(site=SiteFactory(), node=node, environment_type="qa"),
        lambda node: EnvironmentFactory(site=SiteFactory(), node=node, promotion_preset="yolo"),
        lambda node: JobFactory(status="paused"),
    ],
)
def test_enum_columns_are_checked_by_the_database(node, make):
    with pytest.raises(IntegrityError), transaction.atomic():
        make(node)


def test_at_most_one_running_job_per_site_in_the_database(node):
    site = SiteFactory()
    JobFactory(site=site, node=node, status="running")
    with pytest.raises(IntegrityError), transaction.atomic():
        JobFactory(site=site, status="running")
    # A node runs as many site jobs as its slots: the claim counts them under the node's lock.
    JobFactory(site=SiteFactory(), node=node, status="running")


def test_environment_ids_are_random_uuid4(node):
    site = SiteFactory()
    environment = site.environments.model(site=site, node=node, name="x", slug="x",
                                          environment_type="staging", preview_url="http://x")
    assert environment.id.version == 4
    assert isinstance(environment.id, uuid.UUID)


def test_secrets_are_encrypted_at_rest(db):
    from django.db import connection

    settings_row = PanelSettings.load()
    settings_row.dns01_rfc2136_secret = "api-token-very-secret"
    settings_row.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT dns01_rfc2136_secret FROM core_panelsettings WHERE id = 1")
        stored = cursor.fetchone()[0]
    assert "very-secret" not in stored
    assert PanelSettings.load().dns01_rfc2136_secret == "api-token-very-secret"
