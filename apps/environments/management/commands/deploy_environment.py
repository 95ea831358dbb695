from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.environments import services
from apps.jobs.inline import run_and_report
from apps.sites.models import Site


class Command(BaseCommand):
    help = (
        "Queue env_deploy for an environment: a git ref (of the environment's repository, or of --repository) "
        "or an archive file (checked and stored first, as an upload through the API would be). With --wait, "
        "run it here and now, print its log, and exit non-zero if it failed or was rolled back."
    )

    def add_arguments(self, parser):
        parser.add_argument("site", help="the site's slug")
        parser.add_argument("environment", help="the environment's slug")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--ref", help="branch, tag or commit to deploy")
        source.add_argument("--archive", help="a tar or zip file holding a wp-content tree or a WordPress tree")
        parser.add_argument("--repository", help="fetch --ref from this repository instead of the environment's")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, site, environment, ref, archive, repository, wait, **options):
        found = Site.objects.filter(slug=site).first()
        target = found.environments.filter(slug=environment).first() if found else None
        if target is None:
            raise CommandError(f"no environment {site}/{environment}")
        actor = audit.Actor.command("deploy_environment")
        path = Path(archive) if archive else None
        if path is not None and not path.is_file():
            raise CommandError(f"no file {archive}")
        try:
            if path is not None:
                with (audit.action(actor, "environment.upload_archive", resource=target) as upload,
                      path.open("rb") as stream):
                    stored = services.store_deploy_archive(target.pk, stream, filename=path.name)
                    upload.describe(details={"archive_id": str(stored.pk)})
                source_type, source_ref = "upload", str(stored.pk)
            else:
                source_type, source_ref = "git", f"{repository}#{ref}" if repository else ref
            with audit.action(actor, "environment.deploy", resource=target) as attempt:
                job = services.deploy(target.pk, source_type=source_type, source_ref=source_ref)
                attempt.describe(job=job)
        except ApiError as exc:
            problems = (exc.details or {}).get("problems") or []
            raise CommandError("\n".join([f"{exc.code}: {exc.message}", *problems[5:]])) from None
        self.stdout.write(str(job.pk))
        if not wait:
            self.stderr.write(f"Queued env_deploy of {site}/{environment}; a worker runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"{site}/{environment} runs the new release.")
