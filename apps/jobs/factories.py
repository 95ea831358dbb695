import factory

from apps.jobs.models import Job


class JobFactory(factory.django.DjangoModelFactory):
    """A job row without dispatching it; pass site/environment/node explicitly."""

    class Meta:
        model = Job

    job_type = "test_noop"
