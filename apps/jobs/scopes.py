"""What a job holds while it runs: its scope (node, site, environment) and the
source environment its handler marks, locked and moved into the handler's
running status and back. The queue (``services.py``) decides when; this module
knows which rows and which statuses.
"""

from apps.core.choices import LifecycleStatus
from apps.core.state import change_state
from apps.environments.models import Environment
from apps.jobs.registry import HandlerSpec
from apps.nodes.models import Node
from apps.sites.models import Site


def lock_scope(job):
    """Lock node, then site, then environment: one order everywhere, so no deadlock.

    NO KEY UPDATE (PostgreSQL): these locks serialize claims and finishes with
    each other, but must not block the FOR KEY SHARE that inserting a row
    referencing the node or site takes (a new job, say); a plain FOR UPDATE
    would, and has deadlocked with such inserts.
    """
    node = Node.objects.select_for_update(no_key=True).filter(pk=job.node_id).first() if job.node_id else None
    site = Site.objects.select_for_update(no_key=True).filter(pk=job.site_id).first() if job.site_id else None
    environment = (
        Environment.objects.select_for_update(no_key=True).filter(pk=job.environment_id).first()
        if job.environment_id
        else None
    )
    return node, site, environment


def marked_source(job, spec: HandlerSpec | None):
    """The locked source environment of a job whose handler marks one (see HandlerSpec)."""
    source_id = (job.payload or {}).get(spec.marks_source) if spec and spec.marks_source else None
    if not source_id or str(source_id) == str(job.environment_id):
        return None
    return Environment.objects.select_for_update(no_key=True).filter(pk=source_id).first()


def failed_resource(site, environment) -> str | None:
    """The name of the first failed resource, for a refusal message; None if none is."""
    if site is not None and site.status == LifecycleStatus.FAILED:
        return f"Site {site.slug}"
    if environment is not None and environment.status == LifecycleStatus.FAILED:
        return f"Environment {environment.slug}"
    return None


def set_resource_status(site, environment, status, reason):
    for resource in (site, environment):
        if resource is not None and (resource.status != status or resource.status_reason != reason):
            change_state(resource, status=status, status_reason=reason)


def mark_running(site, environment, source, spec: HandlerSpec):
    """At a claim: site and environment into the handler's running status, and
    the source it marks too, if that is idle (active)."""
    if not spec.running_status:
        return
    set_resource_status(site, environment, spec.running_status, "")
    if source is not None and source.status == LifecycleStatus.ACTIVE:
        change_state(source, status=spec.running_status, status_reason="")


def restore_resources(job, site, environment, spec: HandlerSpec | None, failed_reason: str | None):
    """After a run: back to active, or failed with a reason. Only resources the
    job itself moved into a transitional status are touched; a source the
    handler marks goes back to active either way."""
    if spec is None or spec.running_status is None:
        return
    for resource in (site, environment):
        if resource is None or resource.status != spec.running_status:
            continue
        if failed_reason is not None:
            change_state(resource, status=LifecycleStatus.FAILED, status_reason=failed_reason)
        else:
            change_state(resource, status=LifecycleStatus.ACTIVE, status_reason="")
    source = marked_source(job, spec)
    if source is not None and source.status == spec.running_status:
        change_state(source, status=LifecycleStatus.ACTIVE, status_reason="")
