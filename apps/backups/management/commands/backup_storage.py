from django.core.management.base import BaseCommand

from apps.backups import storage


class Command(BaseCommand):
    help = "Say whether backups are on: where they go, or what is missing to turn them on (scripts/run's summary)."

    def handle(self, *args, **options):
        values = storage.effective_values()
        missing = storage.missing_fields(values)
        if missing:
            self.stdout.write(f"off: {storage.NOT_CONFIGURED_HINT} Missing: {', '.join(missing)}.")
        else:
            location = "/".join(part for part in (values["bucket"], values["prefix"]) if part)
            self.stdout.write(f"on: restic repositories in s3://{location} at {values['endpoint']}.")
