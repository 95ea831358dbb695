import uuid

from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.backups import services
from apps.backups.models import Backup
from apps.core.errors import ApiError
from apps.jobs.inline import run_and_report
from apps.jobs.models import Job
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue env_restore of a completed backup of the site into an environment (a worker runs it): the backup "
        "is checked against its checksum, a pre-restore backup taken, files and/or database put back, the health "
        "checked, and everything put back if it fails (once healthy, restore_cleanup removes what was kept aside). With --as-clone, the backup goes into a new clone "
        "environment instead and the environment named is only copied. With --wait, run it here and now, print "
        "its log, and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug (with --as-clone: any of the site's)")
        parser.add_argument("--backup", required=True, help="the backup's id")
        parser.add_argument("--as-clone", action="store_true",
                            help="restore into a new clone environment; the environment itself is untouched")
        parser.add_argument("--clone-slug", default="", help="the new clone's slug (default: restore-<backup time>)")
        parser.add_argument("--wait", action="store_true", help="run the job(s) in this process and print the log")

    def handle(self, *args, site, environment, backup, as_clone, clone_slug, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            chosen = Backup.objects.filter(pk=uuid.UUID(backup)).first()
        except ValueError:
            chosen = None
        if chosen is None:
            raise CommandError(f"no backup {backup}")
        actor = audit.Actor.command("restore_environment")
        try:
            if as_clone:
                with audit.action(actor, "backup.restore_as_clone", resource=chosen,
                                  details={"slug": clone_slug}) as attempt:
                    job = services.request_restore_as_clone(chosen.pk, slug=clone_slug)
                    attempt.describe(job=job)
            else:
                with audit.action(actor, "environment.restore", resource=target,
                                  details={"backup_id": str(chosen.pk)}) as attempt:
                    job = services.request_restore(target.pk, chosen.pk)
                    attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_restore of backup {chosen.pk}; a worker runs it (manage.py runworker).")
            return
        if as_clone:
            run_and_report(Job.objects.get(pk=job.payload["env_create_job_id"]), self.stderr.write)
        done = run_and_report(job, self.stderr.write)
        if done is not None:
            self.stderr.write(f"Backup {chosen.pk} restored into {job.environment}.")
            if done.result.get("cleanup_job_id"):  # what was kept aside for the way back: the site's next job
                run_and_report(Job.objects.get(pk=done.result["cleanup_job_id"]), self.stderr.write)
