from django.core.management.base import BaseCommand, CommandError

from apps.accounts import services
from apps.audit import services as audit
from apps.core.errors import ApiError


class Command(BaseCommand):
    help = (
        "Let an email log in again now: end its lock after too many failed logins (from any address) "
        "and clear its failures from every address. Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="the email the logins were for")

    def handle(self, *args, email, **options):
        try:
            unlocked = services.unlock_account(email, actor=audit.Actor.command("unlock_account"), via="unlock_account")
        except ApiError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(services.describe_unlock(unlocked))
