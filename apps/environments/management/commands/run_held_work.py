from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue env_run_scheduled for a staging or clone environment (a worker runs it): its held WP-Cron events "
        "and Action Scheduler queue run once, with payments and outgoing requests still held "
        "(docs/staging-holds.md). With --wait, run it here and now, print its log and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug (not production: it holds nothing)")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            with audit.action(audit.Actor.command("run_held_work"), "environment.run_scheduled",
                              resource=target) as attempt:
                job = services.run_scheduled(target.pk)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_run_scheduled of {site}/{environment}; a worker runs it "
                              "(manage.py runworker).")
            return
        if (finished := run_and_report(job, self.stderr.write)) is not None:
            due = (finished.result or {}).get("due_after") or {}
            self.stderr.write(f"Ran {finished.result.get('cron_events')} WP-Cron event(s); due Action Scheduler "
                              f"actions left: {due.get('scheduled_actions')}.")
