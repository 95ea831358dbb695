from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.jobs.inline import run_and_report
from apps.sites.models import Site

SWITCH = {"on": True, "off": False}


class Command(BaseCommand):
    help = (
        "Turn an environment's page cache (--page) or Redis object cache (--object) on or off "
        "(env_cache_toggle), or empty both (--purge, cache_purge). A worker runs the job; with --wait it runs "
        "here and now, its log is printed, and the exit status is non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        parser.add_argument("--page", choices=sorted(SWITCH), help="the FastCGI page cache")
        parser.add_argument("--object", choices=sorted(SWITCH), help="the Redis object cache")
        parser.add_argument("--purge", action="store_true", help="purge both caches")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, page, object, purge, wait, **options):
        if purge == bool(page or object):
            raise CommandError("give --purge, or --page and/or --object")
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        action = "environment.cache_purge" if purge else "environment.cache_toggle"
        try:
            with audit.action(audit.Actor.command("cache_environment"), action, resource=target) as attempt:
                if purge:
                    job = services.purge_cache(target.pk)
                else:
                    job = services.set_cache(
                        target.pk,
                        fastcgi_cache_enabled=SWITCH.get(page), redis_cache_enabled=SWITCH.get(object),
                    )
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued {job.job_type} for {site}/{environment}; a worker runs it (manage.py runworker).")
            return
        run_and_report(job, self.stderr.write)
