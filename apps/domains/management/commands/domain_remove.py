from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.domains import hostnames, services
from apps.domains.models import Domain
from apps.jobs.inline import run_and_report


class Command(BaseCommand):
    help = (
        "Queue domain_remove (a worker runs it): the domain's server block and certificate are removed from its "
        "node; if it was primary, the site's URLs move to the next domain or the preview URL. With --wait, run it "
        "here and now, print its log and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("hostname", help="the attached hostname")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, hostname, wait, **options):
        try:
            name = hostnames.normalize(hostname)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        domain = Domain.objects.filter(hostname=name).first()
        if domain is None:
            raise CommandError(f"no domain {name} is attached")
        try:
            with audit.action(audit.Actor.command("domain_remove"), "domain.remove", resource=domain) as attempt:
                job = services.request_remove(domain.pk)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued domain_remove of {name}; a worker runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"{name} is removed.")
