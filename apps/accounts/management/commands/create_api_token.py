from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, User
from apps.audit import services as audit


class Command(BaseCommand):
    help = "Create a personal API token for a staff user and print it (once: only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("email", help="the staff user the token acts as")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'CI deploys'")
        parser.add_argument("--expires-days", type=int, default=None, help="valid for this many days (default: no expiry)")

    def handle(self, *args, email, name, expires_days, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no user with the email {email}")
        if not (user.is_active and user.is_staff):
            raise CommandError(f"{user.email} is not an active staff user; the API would refuse the token")
        name = name.strip()
        limit = ApiToken._meta.get_field("name").max_length
        if not name or len(name) > limit:
            raise CommandError(f"--name must be 1 to {limit} characters")
        expires_at = None
        if expires_days is not None:
            if expires_days < 1:
                raise CommandError("--expires-days must be at least 1")
            expires_at = timezone.now() + timedelta(days=expires_days)

        with audit.action(audit.Actor.command("create_api_token"), "apitoken.create", resource_type="apitoken",
                          details={"via": "create_api_token", "for": user.email}) as attempt:
            issued = services.create_api_token(user, name, expires_at)
            attempt.describe(resource=issued.token)
        # The token alone on stdout, so scripts can capture it; the rest to stderr.
        self.stdout.write(issued.plaintext)
        expiry = f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "does not expire"
        self.stderr.write(
            f"API token {name!r} for {user.email} ({expiry}). It is shown only now; "
            "send it as 'Authorization: Bearer <token>'."
        )

