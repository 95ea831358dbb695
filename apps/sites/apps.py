from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "apps.sites"
    label = "sites"
    default_auto_field = "django.db.models.BigAutoField"
