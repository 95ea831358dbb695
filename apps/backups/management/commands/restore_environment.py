import uuid

from django.core.management.base import CommandError

from apps.backups import services
from apps.backups.models import Backup
from apps.jobs.commands import EnvironmentJobCommand, queue_audited
from apps.jobs.inline import run_and_report
from apps.jobs.models import Job


class Command(EnvironmentJobCommand):
    help = (
        "Queue env_restore of a completed backup of the site into an environment (a worker runs it): the backup "
        "is checked against its checksum, a pre-restore backup taken, files and/or database put back, the health "
        "checked, and everything put back if it fails (once healthy, restore_cleanup removes what was kept aside). "
        "With --as-clone, the backup goes into a new clone "
        "environment instead and the environment named is only copied. With --wait, run it here and now, print "
        "its log, and exit non-zero if it failed."
    )

    environment_help = "the environment's slug (with --as-clone: any of the site's)"

    def add_target_arguments(self, parser):
        parser.add_argument("--backup", required=True, help="the backup's id")
        parser.add_argument("--as-clone", action="store_true",
                            help="restore into a new clone environment; the environment itself is untouched")
        parser.add_argument("--clone-slug", default="", help="the new clone's slug (default: restore-<backup time>)")

    def find_target(self, *, backup, **options):
        target = super().find_target(**options)
        try:
            self.backup = Backup.objects.filter(pk=uuid.UUID(backup)).first()
        except ValueError:
            self.backup = None
        if self.backup is None:
            raise CommandError(f"no backup {backup}")
        return target

    def queue(self, actor, target, *, as_clone, clone_slug, **options):
        chosen = self.backup
        if as_clone:
            return queue_audited(actor, "backup.restore_as_clone", chosen,
                                 lambda: services.request_restore_as_clone(chosen.pk, slug=clone_slug),
                                 details={"slug": clone_slug})
        return queue_audited(actor, "environment.restore", target,
                             lambda: services.request_restore(target.pk, chosen.pk),
                             details={"backup_id": str(chosen.pk)})

    def describe(self, target, job):
        return f"backup {self.backup.pk}"

    def run_here(self, job):
        # As a clone, the new environment is made first by its own job.
        if "env_create_job_id" in job.payload:
            run_and_report(Job.objects.get(pk=job.payload["env_create_job_id"]), self.stderr.write)
        return super().run_here(job)

    def report(self, finished, target, **options):
        self.stderr.write(f"Backup {self.backup.pk} restored into {finished.environment}.")
        if (finished.result or {}).get("cleanup_job_id"):  # what was kept aside for the way back: the site's next job
            run_and_report(Job.objects.get(pk=finished.result["cleanup_job_id"]), self.stderr.write)
