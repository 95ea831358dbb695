"""Node state transitions: registration (pins the host key), provisioning,
re-pinning a changed host key, health reports."""

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.jobs.services import enqueue_job
from apps.nodes import keys, ssh
from apps.nodes.choices import NodeStatus
from apps.nodes.models import MAX_SITE_JOBS_LIMIT, Node
from apps.nodes.signals import health_recorded

logger = logging.getLogger(__name__)


def _probe_host_key(hostname: str, port: int, username: str) -> str:
    """Connect once without a pin, authenticate, and return the server's host key."""
    target = ssh.Target(key=f"probe-{uuid.uuid4()}", hostname=hostname, port=port, username=username, pinned_host_key="")
    try:
        connection = ssh.Connection(target, keys.private_key()).open()
    except ssh.SshAuthFailed as exc:
        raise ApiError("ssh_auth_failed", exc.message, {"public_key": keys.public_key()}) from None
    except ssh.SshError as exc:
        raise ApiError("node_unreachable", exc.message) from None
    try:
        connection.run(["true"])
    except ssh.SshError as exc:
        raise ApiError("node_unreachable", exc.message) from None
    finally:
        connection.close()
    return connection.server_host_key


def register_node(*, name: str, hostname: str, public_ipv4: str, ssh_port: int = 22, ssh_user: str = "root",
                  is_local: bool = False) -> Node:
    """Create a node after connecting to it once; its host key is pinned from then on."""
    if Node.objects.filter(name=name).exists():
        raise ApiError("conflict", f"A node named {name} exists already.")
    if is_local and Node.objects.filter(is_local=True).exists():
        raise ApiError("conflict", "A local node is registered already.")
    host_key = _probe_host_key(hostname, ssh_port, ssh_user)
    try:
        with transaction.atomic():
            return Node.objects.create(
                name=name,
                hostname=hostname,
                ssh_port=ssh_port,
                ssh_user=ssh_user,
                public_ipv4=public_ipv4,
                is_local=is_local,
                host_key=host_key,
                status=NodeStatus.PROVISIONING,
            )
    except IntegrityError:
        raise ApiError("conflict", f"A node named {name} (or a local node) exists already.") from None


def repin_host_key(node: Node) -> Node:
    """After an operator verified a changed host key: pin the key the node shows now."""
    host_key = _probe_host_key(node.hostname, node.ssh_port, node.ssh_user)
    ssh.forget(str(node.pk))
    return change_state(node, host_key=host_key, status_reason="")


def provision_node(node: Node, user=None, options: dict | None = None):
    """Queue node_provision. ``options`` (apply_firewall, listen_address,
    extra_tcp_ports) become the job's payload; absent ones take the defaults
    of ``apps.nodes.jobs.provision_params``."""
    if node.status == NodeStatus.DECOMMISSIONED:
        raise ApiError("conflict", "The node is decommissioned.")
    try:
        with transaction.atomic():
            return enqueue_job("node_provision", node=node, user=user, payload=dict(options or {}),
                               dedup_key=f"node:{node.pk}")
    except IntegrityError:
        raise ApiError("conflict", f"Node {node.name} is being provisioned already.") from None


def mark_provisioned(node: Node, health: dict) -> Node:
    node.refresh_from_db()
    return change_state(
        node,
        status=NodeStatus.ACTIVE,
        status_reason="",
        health=health,
        health_checked_at=timezone.now(),
        last_seen_at=timezone.now(),
    )


def mark_unreachable(node: Node, reason: str) -> Node:
    node.refresh_from_db()
    if node.status == NodeStatus.DECOMMISSIONED:
        return node
    return change_state(node, status=NodeStatus.UNREACHABLE, status_reason=reason)


def record_provision_failure(node: Node, reason: str) -> Node:
    node.refresh_from_db()
    return change_state(node, status_reason=reason)


def record_health(node: Node, health: dict) -> Node:
    node.refresh_from_db()
    # A quick check does not see what only provisioning reports (firewall, Fail2Ban jails).
    changes = dict(health={**node.health, **health}, health_checked_at=timezone.now(), last_seen_at=timezone.now())
    if node.status == NodeStatus.UNREACHABLE:
        # Answering again does not make a node that was never provisioned active.
        changes.update(status=NodeStatus.ACTIVE if node.health else NodeStatus.PROVISIONING, status_reason="")
    node = change_state(node, **changes)
    health_recorded.send(sender=Node, node=node, report=health)
    return node


def set_max_site_jobs(node_id, max_site_jobs: int, expected_version: int | None = None) -> Node:
    """How many site jobs the node runs at once. More room starts waiting jobs at once."""
    from apps.jobs import dispatch

    if isinstance(max_site_jobs, bool) or not isinstance(max_site_jobs, int) \
            or not 1 <= max_site_jobs <= MAX_SITE_JOBS_LIMIT:
        raise ApiError("bad_request", f"max_site_jobs must be a whole number from 1 to {MAX_SITE_JOBS_LIMIT}.",
                       {"fields": {"max_site_jobs": [f"1 to {MAX_SITE_JOBS_LIMIT}"]}})
    with transaction.atomic():
        node = Node.objects.select_for_update(no_key=True).filter(pk=node_id).first()
        if node is None:
            raise ApiError("not_found", "No node with this id.")
        change_state(node, expected_version, max_site_jobs=max_site_jobs)
        transaction.on_commit(lambda: dispatch.wake_node(node))
    return node
