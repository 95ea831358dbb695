from django.db import models

from apps.core.choices import LifecycleStatus
from apps.core.models import VersionedModel


class Site(VersionedModel):
    """A WordPress project; its environments are the running copies.

    Exactly one environment is ``production`` (a database constraint on Environment).
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    status = models.CharField(
        max_length=20, choices=LifecycleStatus.choices, default=LifecycleStatus.ACTIVE
    )
    status_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=LifecycleStatus.values), name="site_status_valid"
            ),
        ]

    def __str__(self):
        return self.slug
