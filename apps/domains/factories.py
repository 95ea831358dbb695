import factory

from apps.domains.models import Domain


class DomainFactory(factory.django.DjangoModelFactory):
    """Pass ``environment`` explicitly."""

    class Meta:
        model = Domain

    hostname = factory.Sequence(lambda n: f"www{n}.example.test")
