from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.environments.updates import SCOPES
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue env_update for an environment: a database backup first, then WordPress core, plugins, themes or "
        "all of them updated by WordPress's upgrader in a new release, health-checked and compared page by page, "
        "rolled back when the site breaks. With --wait, run it here and now, print its log (each component), "
        "and exit non-zero if it failed or was rolled back."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        parser.add_argument("--scope", default="all", choices=SCOPES, help="core, plugins, themes or all (default)")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, scope, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        try:
            with audit.action(audit.Actor.command("update_environment"), "environment.update", resource=target,
                              details={"scope": scope}) as attempt:
                job = services.request_update(target.pk, scope)
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_update ({scope}) of {site}/{environment}; a worker runs it "
                              "(manage.py runworker).")
            return
        finished = run_and_report(job, self.stderr.write)
        if finished is not None:
            updated = (finished.result or {}).get("updated") or []
            self.stderr.write(f"{site}/{environment}: {len(updated)} component(s) updated." if updated
                              else f"{site}/{environment}: nothing to update.")
