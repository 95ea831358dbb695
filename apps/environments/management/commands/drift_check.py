from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import drift, services
from apps.environments.models import Environment
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Check drift of a staging or clone environment (drift_check): its site's production measured now and "
        "compared with the baseline taken when the environment was copied. A worker runs the job; with --wait "
        "it runs here and now, its log and the result are printed, and the exit status is non-zero if the job "
        "failed (a drifted result is a successful check)."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            with audit.action(audit.Actor.command("drift_check"), "environment.drift_check", resource=target) as attempt:
                job = services.request_drift_check(target.pk)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued drift_check for {site}/{environment}; a worker runs it (manage.py runworker).")
            return
        run_and_report(job, self.stderr.write)
        target = Environment.objects.select_related("last_drift_check").get(pk=target.pk)
        if target.last_drift_check is not None:
            self.stdout.write(drift.summary(target.last_drift_check.report))
