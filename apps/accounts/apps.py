from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.accounts.roles import sync_role_groups_after_migrate

        # Keeps the role groups in step with permissions added by later releases.
        post_migrate.connect(sync_role_groups_after_migrate, dispatch_uid="pressluft_sync_role_groups")
