from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.environments.choices import EnvironmentType, PromotionPreset
from apps.environments.serializers import CreateEnvironmentSerializer
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue env_create: copy an environment of a site (default: production) into a new staging or "
        "clone environment (a worker runs it). With --wait, run it here and now instead, print its log, "
        "and exit non-zero if it failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("source", nargs="?", default="production", help="slug of the environment copied")
        parser.add_argument("--name", required=True, help="the new environment's name")
        parser.add_argument("--slug", required=True, help="the new environment's slug")
        parser.add_argument("--type", default=EnvironmentType.STAGING,
                            choices=[EnvironmentType.STAGING, EnvironmentType.CLONE])
        parser.add_argument("--preset", default=PromotionPreset.CONTENT_PROTECT, choices=PromotionPreset.values,
                            help="promotion preset")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, source, name, slug, type, preset, wait, **options):
        found = Site.objects.filter(slug=site).first()
        if found is None:
            raise CommandError(f"no site with slug {site}")
        origin = found.environments.filter(slug=source).first()
        if origin is None:
            raise CommandError(f"site {site} has no environment {source}")
        # The same validation as the API, so a command line cannot create what a request could not.
        body = CreateEnvironmentSerializer(data={"name": name, "slug": slug, "type": type, "promotion_preset": preset})
        if not body.is_valid():
            raise CommandError("; ".join(
                f"{field}: {' '.join(map(str, errors))}" for field, errors in body.errors.items()
            ))
        data = body.validated_data
        try:
            with audit.action(audit.Actor.command("clone_environment"), "environment.create",
                              resource_type="environment", details={"source": str(origin.pk)}) as attempt:
                job = services.create_environment(
                    site_id=found.pk, source_environment_id=origin.pk, name=data["name"], slug=data["slug"],
                    environment_type=data["type"], promotion_preset=data["promotion_preset"],
                )
                attempt.describe(resource=job.environment, job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(
                f"Queued env_create of {site}/{slug} from {source}; a worker runs it (manage.py runworker)."
            )
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"{site}/{slug} is ready.")
