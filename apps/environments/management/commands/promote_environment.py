from apps.environments import services
from apps.environments.choices import EnvironmentType
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Promote a staging or clone environment into its site's production (env_promote): its code and the tables "
        "its promotion preset does not protect go live, after a fresh drift check and a full backup of "
        "production; protected tables and uploads stay production's. Refused while its drift is drifted or "
        "unknown. A worker runs the job; with --wait it runs here and now, its log is printed, and the exit "
        "status is non-zero if it failed."
    )

    environment_help = "the slug of the staging or clone environment to promote"

    def queue(self, actor, target, **options):
        production = target.site.environments.filter(environment_type=EnvironmentType.PRODUCTION).first()
        return queue_audited(actor, "environment.promote", target,
                             lambda: services.request_promote(target.pk, production.pk if production else target.pk),
                             details={"target_environment_id": str(production.pk) if production else None})
