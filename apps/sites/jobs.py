"""Job handlers of the sites domain: site_create, site_delete."""

import secrets

from apps.backups.jobs import take_final_backups
from apps.core.choices import LifecycleStatus
from apps.environments import naming, node_ops, releases
from apps.environments.choices import ReleaseSourceType
from apps.environments.models import Environment
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler
from apps.sites import services

ADMIN_USER = "pressluft-admin"


@job_handler("site_create", running_status=LifecycleStatus.DEPLOYING)
def site_create(ctx):
    """Create the production environment on its node, install WordPress, check it."""
    environment = Environment.objects.select_related("node", "site").get(pk=ctx.job.environment_id)
    release_name = ctx.payload.get("release") or naming.new_release_name(ctx.job.created_at)
    install = {
        "title": environment.site.name,
        "admin_user": ADMIN_USER,
        "admin_email": ctx.payload.get("admin_email") or "admin@localhost",
        # Never stored: operators get in with the one-time login link.
        "admin_password": secrets.token_urlsafe(24),
    }
    with ctx.step(f"set up {environment.preview_url} on {environment.node.name}"):
        result = node_ops.setup(environment, release=release_name, install=install, ctx=ctx)
    release = releases.record_release(environment, result["release"], ReleaseSourceType.CORE, "wordpress-core")
    releases.make_current(environment, release)
    with ctx.step("health check"):
        report = node_ops.check_health(environment, ctx)
    releases.record_health(release, report.healthy)
    if not report.healthy:
        raise JobError("health_check_failed", f"The new site is not healthy: {report.problem}.")
    ctx.result = {"preview_url": environment.preview_url, "release": release.directory}
    ctx.log(f"site is up at {environment.preview_url}")


@job_handler("site_delete")
def site_delete(ctx):
    """Remove every environment of the site from its node, then the records."""
    site = services.Site.objects.filter(pk=ctx.payload.get("site_id")).first()
    if site is None:
        ctx.log("the site's records are gone already: nothing left to do")
        return
    environments = list(Environment.objects.select_related("node", "site").filter(site=site).order_by("-created_at"))
    take_final_backups(ctx, environments)
    ctx.checkpoint()
    for environment in environments:
        with ctx.step(f"remove environment {environment.slug} from {environment.node.name}"):
            node_ops.teardown(environment, ctx)
    ctx.checkpoint()
    services.remove_site_records(site)
    ctx.log(f"site {site.slug} deleted")
