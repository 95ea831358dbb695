from apps.environments import services
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Queue env_run_scheduled for a staging or clone environment (a worker runs it): its held WP-Cron events "
        "and Action Scheduler queue run once, with payments and outgoing requests still held "
        "(docs/staging-holds.md). With --wait, run it here and now, print its log and exit non-zero if it failed."
    )

    environment_help = "the environment's slug (not production: it holds nothing)"

    def queue(self, actor, target, **options):
        return queue_audited(actor, "environment.run_scheduled", target, lambda: services.run_scheduled(target.pk))

    def report(self, finished, target, **options):
        due = (finished.result or {}).get("due_after") or {}
        self.stderr.write(f"Ran {finished.result.get('cron_events')} WP-Cron event(s); due Action Scheduler "
                          f"actions left: {due.get('scheduled_actions')}.")
