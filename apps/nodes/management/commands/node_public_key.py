from django.core.management.base import BaseCommand

from apps.nodes import keys


class Command(BaseCommand):
    help = "Print the panel's SSH public key (created on first use); add it to each node user's authorized_keys."

    def handle(self, *args, **options):
        self.stdout.write(keys.public_key())
