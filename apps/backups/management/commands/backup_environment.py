from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.backups import services
from apps.backups.choices import BackupScope
from apps.backups.models import Backup
from apps.core.errors import ApiError
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue backup_create for an environment (a worker runs it): its database, its files or both, into the "
        "site's restic repository in the configured backup storage. With --wait, run it here and now, print "
        "its log and the backup, and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        parser.add_argument("--scope", default=BackupScope.FULL, choices=BackupScope.values,
                            help="db, files or full (default)")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, scope, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            with audit.action(audit.Actor.command("backup_environment"), "environment.backup", resource=target,
                              details={"backup_scope": scope}) as attempt:
                job = services.request_backup(target.pk, scope)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued backup_create ({scope}) of {site}/{environment}; a worker runs it "
                              "(manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            backup = Backup.objects.get(pk=job.payload["backup_id"])
            self.stderr.write(f"Backup {backup.pk} completed: {backup.size_bytes} bytes ({backup.added_bytes} new), "
                              f"checksum {backup.checksum}, in {backup.storage_path}.")
