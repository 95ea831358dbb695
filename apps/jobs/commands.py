"""The shape every job-queuing management command shares.

A command finds what it acts on, queues its job through the same service
and audit record as the API and the admin (the one path for an operator
action), prints the job's id, and with ``--wait`` runs the job in this
process and prints its log. Subclasses say only what differs: their
arguments, how they find the target, the service call, and what to say when
the job has succeeded.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class JobCommand(BaseCommand):
    def add_arguments(self, parser):
        self.add_target_arguments(parser)
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def add_target_arguments(self, parser):
        """The command's own arguments."""

    def find_target(self, **options):
        """What the command acts on; CommandError when there is none."""
        raise NotImplementedError

    def queue(self, actor, target, **options):
        """Audit and queue the job through its service; returns the job."""
        raise NotImplementedError

    def describe(self, target, job) -> str:
        """What the job acts on, in the "Queued …" line."""
        return str(target)

    def report(self, finished, target, **options) -> None:
        """Said after the job has run here and succeeded."""

    def error_text(self, exc: ApiError) -> str:
        return f"{exc.code}: {exc.message}"

    def handle(self, *args, wait, **options):
        target = self.find_target(**options)
        actor = audit.Actor.command(self.__module__.rsplit(".", 1)[-1])
        try:
            job = self.queue(actor, target, **options)
        except ApiError as exc:
            raise CommandError(self.error_text(exc)) from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued {job.job_type} of {self.describe(target, job)}; a worker runs it "
                              "(manage.py runworker).")
            return
        finished = self.run_here(job)
        if finished is not None:
            self.report(finished, target, **options)

    def run_here(self, job):
        return run_and_report(job, self.stderr.write)


class EnvironmentJobCommand(JobCommand):
    """A job on one environment, named by its site's slug and its own."""

    environment_help = "the environment's slug"

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help=self.environment_help)
        super().add_arguments(parser)

    def find_target(self, *, site, environment, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        return target

    def describe(self, target, job) -> str:
        return f"{target.site.slug}/{target.slug}"


class SiteJobCommand(JobCommand):
    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        super().add_arguments(parser)

    def find_target(self, *, site, **options):
        found = Site.objects.filter(slug=site).first()
        if found is None:
            raise CommandError(f"no site with slug {site}")
        return found

    def describe(self, target, job) -> str:
        return target.slug


def queue_audited(actor, action: str, target, request, details: dict | None = None):
    """``request()`` queues the job inside the audit record of ``action`` on ``target``."""
    with audit.action(actor, action, resource=target, details=details) as attempt:
        job = request()
        attempt.describe(job=job)
    return job
