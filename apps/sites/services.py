"""Site state transitions: create (with its production environment), reset, delete."""

import uuid

from django.db import IntegrityError, transaction

from apps.backups import services as backups
from apps.core.choices import TRANSITIONAL, LifecycleStatus
from apps.core.errors import ApiError
from apps.core.passwords import new_database_password
from apps.core.state import reset_failed
from apps.environments import naming
from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment
from apps.environments.services import remove_environment_records
from apps.jobs.choices import ACTIVE as ACTIVE_JOB_STATUSES
from apps.jobs.models import Job
from apps.jobs.services import enqueue_job
from apps.nodes.choices import NodeStatus
from apps.nodes.models import Node
from apps.sites.models import Site


def reset_site(site_id, expected_version: int | None = None) -> Site:
    """``failed -> active``, only when nothing is still working on the site.

    Validation: no queued or running job on the site, and none of its
    environments in a transitional status (a job would still own it).
    """
    with transaction.atomic():
        site = Site.objects.select_for_update().filter(pk=site_id).first()
        if site is None:
            raise ApiError("not_found", "No site with this id.")
        problems = []
        active_jobs = list(Job.objects.filter(site=site, status__in=ACTIVE_JOB_STATUSES).values_list("pk", flat=True))
        if active_jobs:
            problems.append(f"{len(active_jobs)} job(s) still queued or running on the site")
        busy_envs = list(site.environments.filter(status__in=TRANSITIONAL).values_list("slug", flat=True))
        if busy_envs:
            problems.append(f"environments still in progress: {', '.join(busy_envs)}")
        return reset_failed(site, expected_version, problems=problems, active_job_ids=active_jobs)


def default_node():
    """The node new sites go to: the local node if it is active, else the only active node."""
    active = Node.objects.filter(status=NodeStatus.ACTIVE)
    local = active.filter(is_local=True).first()
    if local is not None:
        return local
    candidates = list(active[:2])
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ApiError("conflict", "No active node: register and provision a node first.")
    raise ApiError("conflict", "Several nodes are active: say which one with node_id.")


def create_site(*, name: str, slug: str, node=None, user=None):
    """Create a site with its production environment, and queue ``site_create``.

    Both start in ``deploying``; the job leaves them ``active`` (or ``failed``
    with the reason). Returns the job.
    """
    if node is None:
        node = default_node()
    elif node.status != NodeStatus.ACTIVE:
        raise ApiError("conflict", f"Node {node.name} is {node.status}, not active.")
    if Site.objects.filter(slug=slug).exists():
        raise ApiError("conflict", f"A site with slug {slug} exists already.", {"slug": slug})
    try:
        with transaction.atomic():
            site = Site.objects.create(name=name, slug=slug, status=LifecycleStatus.DEPLOYING)
            environment = Environment(
                id=uuid.uuid4(),
                site=site,
                node=node,
                name="Production",
                slug="production",
                environment_type=EnvironmentType.PRODUCTION,
                status=LifecycleStatus.DEPLOYING,
                db_password=new_database_password(),
            )
            environment.preview_url = naming.preview_url(environment, node)
            environment.save()
            job = enqueue_job(
                "site_create",
                site=site,
                environment=environment,
                node=node,
                # The first release's name is fixed here, so every run (a retry too) builds the same one.
                payload={
                    "admin_email": getattr(user, "email", "") or "admin@localhost",
                    "release": naming.new_release_name(),
                },
                user=user,
            )
    except IntegrityError:
        raise ApiError("conflict", f"A site with slug {slug} exists already.", {"slug": slug}) from None
    return job


def delete_site(site_id, user=None, final_backup: bool = True):
    """Queue ``site_delete``: a final backup of every environment first (unless
    ``final_backup`` is False; see backups.services.final_backup_payload), then
    every environment is removed from its node, then the records."""

    with transaction.atomic():
        site = Site.objects.select_for_update().filter(pk=site_id).first()
        if site is None:
            raise ApiError("not_found", "No site with this id.")
        if Job.objects.filter(site=site, status__in=ACTIVE_JOB_STATUSES).exists():
            raise ApiError("conflict", "A job is queued or running on this site; wait for it or cancel it.")
        environments = list(site.environments.select_related("site").order_by("created_at"))
        production = environments[0] if environments else None
        return enqueue_job(
            "site_delete",
            site=site,
            node=production.node if production else None,
            payload={"site_id": str(site.pk), "slug": site.slug,
                     **backups.final_backup_payload(environments, final_backup)},
            user=user,
        )


def remove_site_records(site) -> None:
    """After the node work of site_delete: the site and everything it owns."""
    with transaction.atomic():
        remove_environment_records(site.environments.values_list("pk", flat=True))
        Site.objects.filter(pk=site.pk).delete()
