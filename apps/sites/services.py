"""Site state transitions."""

from django.db import transaction

from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.core.choices import TRANSITIONAL
from apps.jobs.choices import ACTIVE as ACTIVE_JOB_STATUSES
from apps.jobs.models import Job
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
        if site.status != LifecycleStatus.FAILED:
            raise ApiError("resource_not_failed", f"The site is {site.status}, not failed.", {"status": site.status})
        problems = []
        active_jobs = list(Job.objects.filter(site=site, status__in=ACTIVE_JOB_STATUSES).values_list("pk", flat=True))
        if active_jobs:
            problems.append(f"{len(active_jobs)} job(s) still queued or running on the site")
        busy_envs = list(site.environments.filter(status__in=TRANSITIONAL).values_list("slug", flat=True))
        if busy_envs:
            problems.append(f"environments still in progress: {', '.join(busy_envs)}")
        if problems:
            raise ApiError(
                "reset_validation_failed",
                "The site cannot be reset yet: " + "; ".join(problems) + ".",
                {"problems": problems, "job_ids": [str(pk) for pk in active_jobs]},
            )
        return change_state(site, expected_version, status=LifecycleStatus.ACTIVE, status_reason="")
