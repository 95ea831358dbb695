from django.core.management.base import CommandError

from apps.core.errors import ApiError
from apps.domains import hostnames, services
from apps.domains.models import Domain
from apps.jobs.commands import JobCommand, queue_audited


class Command(JobCommand):
    help = (
        "Queue domain_remove (a worker runs it): the domain's server block and certificate are removed from its "
        "node; if it was primary, the site's URLs move to the next domain or the preview URL. With --wait, run it "
        "here and now, print its log and exit non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("hostname", help="the attached hostname")

    def find_target(self, *, hostname, **options):
        try:
            name = hostnames.normalize(hostname)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        domain = Domain.objects.filter(hostname=name).first()
        if domain is None:
            raise CommandError(f"no domain {name} is attached")
        return domain

    def queue(self, actor, target, **options):
        return queue_audited(actor, "domain.remove", target, lambda: services.request_remove(target.pk))

    def describe(self, target, job):
        return target.hostname

    def report(self, finished, target, **options):
        self.stderr.write(f"{target.hostname} is removed.")
