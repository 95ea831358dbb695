import ipaddress

from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.jobs.inline import run_and_report
from apps.nodes import services
from apps.nodes.models import Node


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(value)
    return port


class Command(BaseCommand):
    help = (
        "Queue node_provision for a node (a worker runs it). With --wait, run it here "
        "and now instead, print its log, and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the node's name")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")
        firewall = parser.add_mutually_exclusive_group()
        firewall.add_argument("--firewall", dest="apply_firewall", action="store_true", default=None,
                              help="load the firewall rules (default, except on the local node)")
        firewall.add_argument("--no-firewall", dest="apply_firewall", action="store_false",
                              help="write the firewall rules but do not load them")
        parser.add_argument("--listen-address", help="address Nginx's default server listens on ('' for all)")
        parser.add_argument("--open-port", dest="extra_tcp_ports", type=_port, action="append",
                            help="one more TCP port the firewall lets in (repeatable)")

    def handle(self, *args, name, wait, apply_firewall, listen_address, extra_tcp_ports, **options):
        node = Node.objects.filter(name=name).first()
        if node is None:
            raise CommandError(f"no node named {name}")
        node_options = {}
        if apply_firewall is not None:
            node_options["apply_firewall"] = apply_firewall
        if listen_address is not None:
            if listen_address:
                try:
                    ipaddress.IPv4Address(listen_address)
                except ValueError:
                    raise CommandError("--listen-address must be an IPv4 address or empty") from None
            node_options["listen_address"] = listen_address
        if extra_tcp_ports:
            node_options["extra_tcp_ports"] = extra_tcp_ports
        try:
            with audit.action(audit.Actor.command("provision_node"), "node.provision", resource=node) as attempt:
                job = services.provision_node(node, options=node_options)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued node_provision for {node.name}; a worker runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"{node.name} is provisioned.")
