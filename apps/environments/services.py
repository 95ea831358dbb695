"""Environment state transitions."""

from django.db import transaction

from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.environments.models import Environment
from apps.jobs.choices import ACTIVE as ACTIVE_JOB_STATUSES
from apps.jobs.models import Job
from apps.nodes.choices import NodeStatus


def reset_environment(environment_id, expected_version: int | None = None) -> Environment:
    """``failed -> active``, only when nothing still works on it and its node is in service.

    Validation: no queued or running job on the environment, and its node is
    not decommissioned.
    """
    with transaction.atomic():
        environment = (
            Environment.objects.select_for_update().select_related("node").filter(pk=environment_id).first()
        )
        if environment is None:
            raise ApiError("not_found", "No environment with this id.")
        if environment.status != LifecycleStatus.FAILED:
            raise ApiError(
                "resource_not_failed",
                f"The environment is {environment.status}, not failed.",
                {"status": environment.status},
            )
        problems = []
        active_jobs = list(
            Job.objects.filter(environment=environment, status__in=ACTIVE_JOB_STATUSES).values_list("pk", flat=True)
        )
        if active_jobs:
            problems.append(f"{len(active_jobs)} job(s) still queued or running on the environment")
        if environment.node.status == NodeStatus.DECOMMISSIONED:
            problems.append(f"its node {environment.node.name} is decommissioned")
        if problems:
            raise ApiError(
                "reset_validation_failed",
                "The environment cannot be reset yet: " + "; ".join(problems) + ".",
                {"problems": problems, "job_ids": [str(pk) for pk in active_jobs]},
            )
        return change_state(environment, expected_version, status=LifecycleStatus.ACTIVE, status_reason="")
