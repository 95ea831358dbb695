"""From a Node row to a live SSH connection."""

from apps.nodes import keys, ssh


def target_for(node) -> ssh.Target:
    return ssh.Target(
        key=str(node.pk),
        hostname=node.hostname,
        port=node.ssh_port,
        username=node.ssh_user,
        pinned_host_key=node.host_key,
    )


def open_connection(node, connect_timeout: float = ssh.CONNECT_TIMEOUT) -> ssh.Connection:
    if not node.host_key:
        raise ssh.HostKeyMismatch(f"Node {node.name} has no pinned host key; register it again.")
    return ssh.connect(target_for(node), keys.private_key(), connect_timeout)
