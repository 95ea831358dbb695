import os

from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.core.exceptions import ValidationError

from apps.accounts import services
from apps.audit import services as audit


class Command(BaseCommand):
    help = (
        "Make sure an admin can log in. With --email/--password (or PRESSLUFT_ADMIN_EMAIL / "
        "PRESSLUFT_ADMIN_PASSWORD) that account exists with that password; without them an "
        "admin is created with a generated password only if none exists yet."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", default=None, help="default: $PRESSLUFT_ADMIN_EMAIL")
        parser.add_argument("--password", default=None, help="default: $PRESSLUFT_ADMIN_PASSWORD")

    def handle(self, *args, email=None, password=None, **options):
        email = email or os.environ.get("PRESSLUFT_ADMIN_EMAIL") or None
        password = password or os.environ.get("PRESSLUFT_ADMIN_PASSWORD") or None
        if email:
            try:
                validate_email(email.strip())
            except ValidationError:
                raise CommandError(f"{email!r} is not an email address") from None
        elif password:
            raise CommandError("a password needs an email: set PRESSLUFT_ADMIN_EMAIL too")

        with audit.action(audit.Actor.command("ensure_admin"), "user.create", resource_type="user",
                          details={"via": "ensure_admin", "superuser": True}) as attempt:
            account = services.ensure_admin(email, password)
            attempt.describe(resource=account.user)
            if not account.created:
                # An existing admin: unchanged without an email; with one its
                # password and admin flags were set, which is an update.
                if email:
                    attempt.describe(action="user.update", details={"password_set": bool(password)})
                else:
                    attempt.changed_nothing()

        self.stdout.write(f"Admin login: {account.user.email}")
        if account.generated_password:
            # Printed this once only; nothing else keeps it in clear.
            self.stdout.write(f"Admin password: {account.generated_password}")
        elif password:
            self.stdout.write("Admin password: the one given (PRESSLUFT_ADMIN_PASSWORD or --password)")
        else:
            self.stdout.write(
                "Admin password: unchanged (set PRESSLUFT_ADMIN_EMAIL and PRESSLUFT_ADMIN_PASSWORD to set a new one)"
            )
