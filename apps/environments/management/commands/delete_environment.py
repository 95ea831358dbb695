from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue env_delete for a staging or clone environment: a full final backup (kept for its retention), "
        "then it is removed from its node, then its records. --no-final-backup deletes without one; without "
        "backup storage configured none is taken and the job log says so. With --wait, run it here and now, "
        "print its log, and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        parser.add_argument("--no-final-backup", action="store_true",
                            help="delete without taking a final backup first")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, no_final_backup, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            with audit.action(audit.Actor.command("delete_environment"), "environment.delete", resource=target,
                              details={"final_backup": not no_final_backup}) as attempt:
                job = services.delete_environment(target.pk, final_backup=not no_final_backup)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_delete of {site}/{environment}; a worker runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"Environment {site}/{environment} deleted.")
