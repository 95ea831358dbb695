from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Refresh a staging or clone environment from its site's production (env_refresh): production's protected "
        "tables (by the environment's promotion preset) and uploads are copied in, URLs rewritten; its code, "
        "settings and other tables stay, and a new drift baseline is taken. A worker runs the job; with --wait it "
        "runs here and now, its log is printed, and the exit status is non-zero if it failed."
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
            with audit.action(audit.Actor.command("refresh_environment"), "environment.refresh",
                              resource=target) as attempt:
                job = services.refresh_from_production(target.pk)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_refresh for {site}/{environment}; a worker runs it (manage.py runworker).")
            return
        run_and_report(job, self.stderr.write)
