from apps.environments import services
from apps.environments.updates import SCOPES
from apps.jobs.commands import EnvironmentJobCommand, queue_audited


class Command(EnvironmentJobCommand):
    help = (
        "Queue env_update for an environment: a database backup first, then WordPress core, plugins, themes or "
        "all of them updated by WordPress's upgrader in a new release, health-checked and compared page by page, "
        "rolled back when the site breaks. With --wait, run it here and now, print its log (each component), "
        "and exit non-zero if it failed or was rolled back."
    )

    def add_target_arguments(self, parser):
        parser.add_argument("--scope", default="all", choices=SCOPES, help="core, plugins, themes or all (default)")

    def queue(self, actor, target, *, scope, **options):
        return queue_audited(actor, "environment.update", target, lambda: services.request_update(target.pk, scope),
                             details={"scope": scope})

    def report(self, finished, target, **options):
        updated = (finished.result or {}).get("updated") or []
        where = f"{target.site.slug}/{target.slug}"
        self.stderr.write(f"{where}: {len(updated)} component(s) updated." if updated
                          else f"{where}: nothing to update.")
