from django.core.management.base import CommandError

from apps.environments import services
from apps.jobs.commands import EnvironmentJobCommand, queue_audited

SWITCH = {"on": True, "off": False}


class Command(EnvironmentJobCommand):
    help = (
        "Turn an environment's page cache (--page) or Redis object cache (--object) on or off "
        "(env_cache_toggle), or empty both (--purge, cache_purge). A worker runs the job; with --wait it runs "
        "here and now, its log is printed, and the exit status is non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("--page", choices=sorted(SWITCH), help="the FastCGI page cache")
        parser.add_argument("--object", choices=sorted(SWITCH), help="the Redis object cache")
        parser.add_argument("--purge", action="store_true", help="purge both caches")

    def find_target(self, *, page, object, purge, **options):
        if purge == bool(page or object):
            raise CommandError("give --purge, or --page and/or --object")
        return super().find_target(**options)

    def queue(self, actor, target, *, page, object, purge, **options):
        if purge:
            return queue_audited(actor, "environment.cache_purge", target, lambda: services.purge_cache(target.pk))
        return queue_audited(actor, "environment.cache_toggle", target, lambda: services.set_cache(
            target.pk, fastcgi_cache_enabled=SWITCH.get(page), redis_cache_enabled=SWITCH.get(object)))
