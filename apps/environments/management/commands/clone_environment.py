from django.core.management.base import CommandError

from apps.audit import services as audit
from apps.environments import services
from apps.environments.choices import EnvironmentType, PromotionPreset
from apps.environments.serializers import CreateEnvironmentSerializer
from apps.jobs.commands import SiteJobCommand


class Command(SiteJobCommand):
    help = (
        "Queue env_create: copy an environment of a site (default: production) into a new staging or "
        "clone environment (a worker runs it). With --wait, run it here and now instead, print its log, "
        "and exit non-zero if it failed."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("source", nargs="?", default="production", help="slug of the environment copied")
        parser.add_argument("--name", required=True, help="the new environment's name")
        parser.add_argument("--slug", required=True, help="the new environment's slug")
        parser.add_argument("--type", default=EnvironmentType.STAGING,
                            choices=[EnvironmentType.STAGING, EnvironmentType.CLONE])
        parser.add_argument("--preset", default=PromotionPreset.CONTENT_PROTECT, choices=PromotionPreset.values,
                            help="promotion preset")

    def find_target(self, *, source, **options):
        """The environment copied."""
        site = super().find_target(**options)
        origin = site.environments.filter(slug=source).first()
        if origin is None:
            raise CommandError(f"site {site.slug} has no environment {source}")
        return origin

    def queue(self, actor, target, *, name, slug, type, preset, **options):
        # The same validation as the API, so a command line cannot create what a request could not.
        body = CreateEnvironmentSerializer(data={"name": name, "slug": slug, "type": type, "promotion_preset": preset})
        if not body.is_valid():
            raise CommandError("; ".join(
                f"{field}: {' '.join(map(str, errors))}" for field, errors in body.errors.items()
            ))
        data = body.validated_data
        # The record names the new environment once the service has made it.
        with audit.action(actor, "environment.create", resource_type="environment",
                          details={"source": str(target.pk)}) as attempt:
            job = services.create_environment(
                site_id=target.site_id, source_environment_id=target.pk, name=data["name"], slug=data["slug"],
                environment_type=data["type"], promotion_preset=data["promotion_preset"],
            )
            attempt.describe(resource=job.environment, job=job)
        return job

    def describe(self, target, job):
        return f"{target.site.slug}/{job.environment.slug} from {target.slug}"

    def report(self, finished, target, **options):
        self.stderr.write(f"{target.site.slug}/{finished.environment.slug} is ready.")

