from apps.environments import drift, services
from apps.environments.models import Environment
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Check drift of a staging or clone environment (drift_check): its site's production measured now and "
        "compared with the baseline taken when the environment was copied. A worker runs the job; with --wait "
        "it runs here and now, its log and the result are printed, and the exit status is non-zero if the job "
        "failed (a drifted result is a successful check)."
    )

    def queue(self, actor, target, **options):
        return queue_audited(actor, "environment.drift_check", target,
                             lambda: services.request_drift_check(target.pk))

    def report(self, finished, target, **options):
        target = Environment.objects.select_related("last_drift_check").get(pk=target.pk)
        if target.last_drift_check is not None:
            self.stdout.write(drift.summary(target.last_drift_check.report))
