from django.core.management.base import BaseCommand, CommandError

from apps.audit import services as audit
from apps.core.errors import ApiError
from apps.domains import panel_https, services
from apps.jobs.inline import run_and_report


class Command(BaseCommand):
    help = (
        "Queue panel_https: the panel served over HTTPS on its control plane domain (the Panel setting, or "
        "PRESSLUFT_CONTROL_PLANE_DOMAIN) by the Nginx of its own machine, or no longer served when none is set. "
        "Changing the setting queues it already; run this after changing PRESSLUFT_CONTROL_PLANE_DOMAIN, after "
        "fixing DNS, or with --no-check-dns before DNS points at this machine. With --wait, run it here and now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-check-dns", dest="check_dns", action="store_false",
                            help="do not require the domain's A record to point at the local node first")
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its log")

    def handle(self, *args, check_dns, wait, **options):
        try:
            with audit.action(audit.Actor.command("panel_https"), "panelsettings.panel_https",
                              resource_type="panelsettings", resource_id="1") as attempt:
                job = services.request_panel_https(check_dns=check_dns)
                if job is None:
                    raise ApiError("conflict", "The panel's machine is not a node of the panel (no local node), so "
                                               "its own Nginx is not managed: serve the domain with a proxy of your own.")
                attempt.describe(job=job)
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(str(job.pk))
        hostname = panel_https.effective_domain()
        what = f"https://{hostname}" if hostname else "no domain (its server block and certificate are removed)"
        if not wait:
            self.stderr.write(f"Queued panel_https for {what}; a worker runs it (manage.py runworker).")
            return
        if run_and_report(job, self.stderr.write) is not None:
            self.stderr.write(f"The panel is served on {what}.")
