from apps.domains import services
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Queue domain_add for an environment (a worker runs it): DNS checked first, then the domain's server "
        "block, its certificate (HTTP-01) and HTTPS; the environment's first domain becomes primary. With --wait, "
        "run it here and now, print its log and exit non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("hostname", help="e.g. www.example.com")
        parser.add_argument("--no-check-dns", action="store_true",
                            help="attach before DNS points at the node; the certificate waits for DNS")

    def queue(self, actor, target, *, hostname, no_check_dns, **options):
        return queue_audited(actor, "environment.domain_add", target,
                             lambda: services.request_add(target.pk, hostname, check_dns=not no_check_dns),
                             details={"hostname": hostname})

    def describe(self, target, job):
        return f"{job.payload['hostname']} for {super().describe(target, job)}"

    def report(self, finished, target, **options):
        self.stderr.write(f"{finished.payload['hostname']} is attached to {target.site.slug}/{target.slug}.")
