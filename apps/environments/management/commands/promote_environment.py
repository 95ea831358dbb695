from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.environments.choices import EnvironmentType
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Promote a staging or clone environment into its site's production (env_promote): its code and the tables "
        "its promotion preset does not protect go live, after a fresh drift check and a full backup of "
        "production; protected tables and uploads stay production's. Refused while its drift is drifted or "
        "unknown. A worker runs the job; with --wait it runs here and now, its log is printed, and the exit "
        "status is non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the slug of the staging or clone environment to promote")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, wait, **options):
        found = Site.objects.filter(slug=site).first()
        source = found.environments.filter(slug=environment).first() if found else None
        if source is None:
            raise CommandError(f"no environment {site}/{environment}")
        production = found.environments.filter(environment_type=EnvironmentType.PRODUCTION).first()
        try:
            with audit.action(audit.Actor.command("promote_environment"), "environment.promote", resource=source,
                              details={"target_environment_id": str(production.pk) if production else None}) as attempt:
                job = services.request_promote(source.pk, production.pk if production else source.pk)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_promote of {site}/{environment}; a worker runs it (manage.py runworker).")
            return
        run_and_report(job, self.stderr.write)
