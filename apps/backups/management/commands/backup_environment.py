from apps.backups import services
from apps.backups.choices import BackupScope
from apps.backups.models import Backup
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Queue backup_create for an environment (a worker runs it): its database, its files or both, into the "
        "site's restic repository in the configured backup storage. With --wait, run it here and now, print "
        "its log and the backup, and exit non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("--scope", default=BackupScope.FULL, choices=BackupScope.values,
                            help="db, files or full (default)")

    def queue(self, actor, target, *, scope, **options):
        return queue_audited(actor, "environment.backup", target, lambda: services.request_backup(target.pk, scope),
                             details={"backup_scope": scope})

    def describe(self, target, job):
        return f"{super().describe(target, job)} ({job.payload.get('backup_scope', '')})"

    def report(self, finished, target, **options):
        backup = Backup.objects.get(pk=finished.payload["backup_id"])
        self.stderr.write(f"Backup {backup.pk} completed: {backup.size_bytes} bytes ({backup.added_bytes} new), "
                          f"checksum {backup.checksum}, in {backup.storage_path}.")
