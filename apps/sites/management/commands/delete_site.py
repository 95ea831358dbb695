from apps.jobs.commands import SiteJobCommand, queue_audited
from apps.sites import services


class Command(SiteJobCommand):
    help = (
        "Queue site_delete: a full final backup of every environment of the site (kept for its retention), "
        "then every environment is removed from its node, then the records. --no-final-backup deletes without "
        "one; without backup storage configured none is taken and the job log says so. With --wait, run it "
        "here and now, print its log, and exit non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("--no-final-backup", action="store_true",
                            help="delete without taking a final backup first")

    def queue(self, actor, target, *, no_final_backup, **options):
        return queue_audited(actor, "site.delete", target,
                             lambda: services.delete_site(target.pk, final_backup=not no_final_backup),
                             details={"final_backup": not no_final_backup})

    def report(self, finished, target, **options):
        self.stderr.write(f"Site {target.slug} deleted.")
