from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.domains import services
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue domain_add for an environment (a worker runs it): DNS checked first, then the domain's server "
        "block, its certificate (HTTP-01) and HTTPS; the environment's first domain becomes primary. With --wait, "
        "run it here and now, print its log and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        parser.add_argument("hostname", help="e.g. www.example.com")
        parser.add_argument("--no-check-dns", action="store_true",
                            help="attach before DNS points at the node; the certificate waits for DNS")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, hostname, no_check_dns, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            with audit.action(audit.Actor.command("domain_add"), "environment.domain_add", resource=target,
                              details={"hostname": hostname}) as attempt:
                job = services.request_add(target.pk, hostname, check_dns=not no_check_dns)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued domain_add of {job.payload['hostname']} for {site}/{environment}; a worker "
                              "runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"{job.payload['hostname']} is attached to {site}/{environment}.")
