import pytest
from django.conf import settings


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            "The test suite runs on PostgreSQL: use scripts/test, or set DATABASE_URL=postgres://..."
        )


PASSWORD = "correct horse battery"


@pytest.fixture
def staff_user(db):
    """The operator the tests act as: a member of the shipped Operators group."""
    from apps.accounts.factories import UserFactory
    from apps.accounts.roles import OPERATORS

    return UserFactory(email="admin@example.test", groups=[OPERATORS])


@pytest.fixture
def anon_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_client(staff_user):
    """A REST client authenticated with a personal API token (no CSRF involved)."""
    from rest_framework.test import APIClient

    from apps.accounts.services import create_api_token

    issued = create_api_token(staff_user, "tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    return client


@pytest.fixture
def node(db):
    from apps.nodes.factories import NodeFactory

    return NodeFactory()


@pytest.fixture
def site_with_production(node):
    from apps.environments.factories import EnvironmentFactory
    from apps.sites.factories import SiteFactory

    site = SiteFactory()
    production = EnvironmentFactory(site=site, node=node, slug="production")
    return site, production


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """DRF throttles count in the cache; without this, logins from earlier
    tests would push later ones over the limit."""
    from django.core.cache import cache

    cache.clear()
    yield
