from apps.environments import services
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Refresh a staging or clone environment from its site's production (env_refresh): production's protected "
        "tables (by the environment's promotion preset) and uploads are copied in, URLs rewritten; its code, "
        "settings and other tables stay, and a new drift baseline is taken. A worker runs the job; with --wait it "
        "runs here and now, its log is printed, and the exit status is non-zero if it failed."
    )

    def queue(self, actor, target, **options):
        return queue_audited(actor, "environment.refresh", target,
                             lambda: services.refresh_from_production(target.pk))
