from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import VersionedModel
from apps.nodes.choices import NodeStatus

# More site jobs at once than this would starve a node's two or four cores anyway.
MAX_SITE_JOBS_LIMIT = 16


class Node(VersionedModel):
    """A Linux server reached over SSH; environments run on it.

    ``host_key`` is pinned at registration: a different key later stops all work on the node.
    """

    name = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=253, help_text="DNS name or IP address used for SSH.")
    ssh_port = models.PositiveIntegerField(default=22)
    ssh_user = models.CharField(max_length=32, default="root")
    public_ipv4 = models.GenericIPAddressField(protocol="IPv4")
    status = models.CharField(max_length=20, choices=NodeStatus.choices, default=NodeStatus.PROVISIONING)
    status_reason = models.TextField(blank=True, default="")
    is_local = models.BooleanField(default=False, help_text="The machine that runs the panel.")
    host_key = models.TextField(blank=True, default="", help_text="Pinned SSH host key (type and base64).")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    health = models.JSONField(default=dict, blank=True, help_text="Last health report: services, disk, memory, versions.")
    health_checked_at = models.DateTimeField(null=True, blank=True)
    max_site_jobs = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_SITE_JOBS_LIMIT)], help_text="How many site jobs may run on the node at once (one per site always; "
                             "node-wide jobs such as provisioning run alone).")

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_node", "Can provision nodes, re-pin their host keys and check their health live"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=NodeStatus.values), name="node_status_valid"
            ),
            models.UniqueConstraint(
                fields=["is_local"], condition=models.Q(is_local=True), name="one_local_node"
            ),
            models.CheckConstraint(
                condition=models.Q(max_site_jobs__gte=1, max_site_jobs__lte=MAX_SITE_JOBS_LIMIT),
                name="node_max_site_jobs_range",
            ),
            models.CheckConstraint(
                condition=models.Q(ssh_port__gte=1, ssh_port__lte=65535), name="node_ssh_port_range"
            ),
        ]

    def __str__(self):
        return self.name
