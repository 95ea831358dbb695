import uuid

import factory

from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment


class EnvironmentFactory(factory.django.DjangoModelFactory):
    """Pass ``site`` and ``node`` explicitly."""

    class Meta:
        model = Environment

    id = factory.LazyFunction(uuid.uuid4)
    name = "Production"
    slug = factory.Sequence(lambda n: f"env-{n}")
    environment_type = EnvironmentType.PRODUCTION
    preview_url = factory.LazyAttribute(lambda o: f"http://{o.id.hex[:8]}.127-0-0-1.sslip.io")
