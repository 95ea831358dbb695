from django.db import models


class LifecycleStatus(models.TextChoices):
    """Status shared by sites and environments (SPEC "State rules")."""

    ACTIVE = "active", "Active"
    CLONING = "cloning", "Cloning"
    DEPLOYING = "deploying", "Deploying"
    RESTORING = "restoring", "Restoring"
    FAILED = "failed", "Failed"


# A job may move a resource from ACTIVE into one of these while it runs.
TRANSITIONAL = frozenset(
    {LifecycleStatus.CLONING, LifecycleStatus.DEPLOYING, LifecycleStatus.RESTORING}
)
