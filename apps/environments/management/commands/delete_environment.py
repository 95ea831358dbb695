from apps.environments import services
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Queue env_delete for a staging or clone environment: a full final backup (kept for its retention), "
        "then it is removed from its node, then its records. --no-final-backup deletes without one; without "
        "backup storage configured none is taken and the job log says so. With --wait, run it here and now, "
        "print its log, and exit non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("--no-final-backup", action="store_true",
                            help="delete without taking a final backup first")

    def queue(self, actor, target, *, no_final_backup, **options):
        return queue_audited(actor, "environment.delete", target,
                             lambda: services.delete_environment(target.pk, final_backup=not no_final_backup),
                             details={"final_backup": not no_final_backup})

    def report(self, finished, target, **options):
        self.stderr.write(f"Environment {target.site.slug}/{target.slug} deleted.")
