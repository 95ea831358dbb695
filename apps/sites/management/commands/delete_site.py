from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.jobs.inline import run_and_report
from apps.sites import services
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue site_delete: a full final backup of every environment of the site (kept for its retention), "
        "then every environment is removed from its node, then the records. --no-final-backup deletes without "
        "one; without backup storage configured none is taken and the job log says so. With --wait, run it "
        "here and now, print its log, and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("--no-final-backup", action="store_true",
                            help="delete without taking a final backup first")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, no_final_backup, wait, **options):
        found = Site.objects.filter(slug=site).first()
        if found is None:
            raise CommandError(f"no site with slug {site}")
        try:
            with audit.action(audit.Actor.command("delete_site"), "site.delete", resource=found,
                              details={"final_backup": not no_final_backup}) as attempt:
                job = services.delete_site(found.pk, final_backup=not no_final_backup)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued site_delete of {site}; a worker runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"Site {site} deleted.")
