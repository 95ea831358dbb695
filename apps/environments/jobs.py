"""Job handlers of the environments domain."""

from apps.environments import node_ops, releases
from apps.environments.models import Environment
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler


@job_handler("health_check")
def health_check(ctx):
    """HTTP 200 from the environment's URL (asked at the node's IP), WordPress
    installed, database reachable; the current release's health is recorded."""
    environment = Environment.objects.select_related("node", "current_release").get(pk=ctx.job.environment_id)
    with ctx.step(f"check {environment.preview_url}"):
        report = node_ops.check_health(environment, ctx)
    if environment.current_release is not None:
        releases.record_health(environment.current_release, report.healthy)
    ctx.result = {
        "healthy": report.healthy,
        "http_status": report.http_status,
        "installed": report.installed,
        "database": report.database,
    }
    if not report.healthy:
        # The environment itself is left as it is: a check changes nothing.
        raise JobError("health_check_failed", f"Unhealthy: {report.problem}.", resource_intact=True)
    ctx.log("healthy")
