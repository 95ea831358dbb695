from django.db import models


class NodeStatus(models.TextChoices):
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    UNREACHABLE = "unreachable", "Unreachable"
    DECOMMISSIONED = "decommissioned", "Decommissioned"
