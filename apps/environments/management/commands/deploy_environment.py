from pathlib import Path

from django.core.management.base import CommandError

from apps.audit import services as audit
from apps.environments import services
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Queue env_deploy for an environment: a git ref (of the environment's repository, or of --repository) "
        "or an archive file (checked and stored first, as an upload through the API would be). With --wait, "
        "run it here and now, print its log, and exit non-zero if it failed or was rolled back."
    )

    def add_target_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--ref", help="branch, tag or commit to deploy")
        source.add_argument("--archive", help="a tar or zip file holding a wp-content tree or a WordPress tree")
        parser.add_argument("--repository", help="fetch --ref from this repository instead of the environment's")

    def find_target(self, *, archive, **options):
        if archive and not Path(archive).is_file():
            raise CommandError(f"no file {archive}")
        return super().find_target(**options)

    def queue(self, actor, target, *, ref, archive, repository, **options):
        if archive:
            path = Path(archive)
            with audit.action(actor, "environment.upload_archive", resource=target) as upload, path.open("rb") as stream:
                stored = services.store_deploy_archive(target.pk, stream, filename=path.name)
                upload.describe(details={"archive_id": str(stored.pk)})
            source_type, source_ref = "upload", str(stored.pk)
        else:
            source_type, source_ref = "git", f"{repository}#{ref}" if repository else ref
        return queue_audited(actor, "environment.deploy", target,
                             lambda: services.deploy(target.pk, source_type=source_type, source_ref=source_ref))

    def error_text(self, exc):
        problems = (exc.details or {}).get("problems") or []
        return "\n".join([super().error_text(exc), *problems[5:]])

    def report(self, finished, target, **options):
        self.stderr.write(f"{target.site.slug}/{target.slug} runs the new release.")
