from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "apps.domains"
    label = "domains"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.domains import services
        from apps.nodes.signals import health_recorded

        def certificate_expiry(sender, node, report, **kwargs):
            services.record_certificate_expiry(node, report)

        health_recorded.connect(certificate_expiry, dispatch_uid="domains.certificate_expiry", weak=False)
