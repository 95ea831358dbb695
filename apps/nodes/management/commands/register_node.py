import ipaddress

from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.nodes import keys, services
from apps.nodes.serializers import RegisterNodeSerializer
from apps.nodes.ssh import fingerprint


class Command(BaseCommand):
    help = (
        "Register a node: connect once over SSH with the panel's key and pin the node's host key. "
        "Authorize the key from `manage.py node_public_key` on the node first."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a short name: lower-case letters, digits, dashes")
        parser.add_argument("hostname", help="DNS name or IPv4 address the panel connects to")
        parser.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
        parser.add_argument("--user", default="root", help="SSH user (default root)")
        parser.add_argument("--public-ip", help="the node's public IPv4 (default: the hostname, if it is an IPv4 address)")
        parser.add_argument("--local", action="store_true", help="this is the machine that runs the panel")

    def handle(self, *args, name, hostname, port, user, public_ip, local, **options):
        if public_ip is None:
            try:
                public_ip = str(ipaddress.IPv4Address(hostname))
            except ValueError:
                raise CommandError("--public-ip is required when the hostname is not an IPv4 address") from None
        body = RegisterNodeSerializer(data={
            "name": name, "hostname": hostname, "ssh_port": port, "ssh_user": user,
            "public_ipv4": public_ip, "is_local": local,
        })
        if not body.is_valid():
            problems = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in body.errors.items())
            raise CommandError(problems)
        try:
            with audit.action(audit.Actor.command("register_node"), "node.register", resource_type="node",
                              details={"name": name}) as attempt:
                node = services.register_node(**body.validated_data)
                attempt.describe(resource=node, details={"name": node.name})
        except ApiError as exc:
            hint = f"\nAuthorize this key on the node:\n{keys.public_key()}" if exc.code == "ssh_auth_failed" else ""
            raise CommandError(f"{exc.code}: {exc.message}{hint}") from None
        self.stdout.write(str(node.pk))
        self.stderr.write(
            f"Registered node {node.name} ({node.ssh_user}@{node.hostname}:{node.ssh_port}), "
            f"host key {fingerprint(node.host_key)} pinned. Next: manage.py provision_node {node.name}"
        )


