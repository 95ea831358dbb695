"""Optimistic-concurrency state changes for VersionedModel rows."""

from django.db.models import F
from django.utils import timezone

from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError


class StaleState(ApiError):
    def __init__(self, obj):
        super().__init__(
            "conflict",
            f"{obj._meta.verbose_name.capitalize()} was changed by someone else; reload and retry.",
            details={"id": str(obj.pk)},
        )


def change_state(obj, expected_version: int | None = None, **changes):
    """Apply ``changes`` to ``obj`` only if its ``state_version`` is still the expected one.

    The update is one conditional UPDATE; on success ``obj`` is refreshed in
    memory, otherwise StaleState (409 conflict) is raised and nothing changes.
    """
    expected = obj.state_version if expected_version is None else expected_version
    model = type(obj)
    now = timezone.now()
    updated = model.objects.filter(pk=obj.pk, state_version=expected).update(
        state_version=F("state_version") + 1, updated_at=now, **changes
    )
    if updated != 1:
        raise StaleState(obj)
    for name, value in changes.items():
        setattr(obj, name, value)
    obj.state_version = expected + 1
    obj.updated_at = now
    return obj


def reset_failed(obj, expected_version: int | None, *, problems: list[str], active_job_ids=()):
    """``failed -> active`` for a locked row, refused while ``problems`` remain.

    The caller holds the row lock and names what still works on it; the
    answer and the codes are the same for every resource that can fail.
    """
    label = obj._meta.verbose_name
    if obj.status != LifecycleStatus.FAILED:
        raise ApiError("resource_not_failed", f"The {label} is {obj.status}, not failed.", {"status": obj.status})
    if problems:
        raise ApiError(
            "reset_validation_failed",
            f"The {label} cannot be reset yet: " + "; ".join(problems) + ".",
            {"problems": problems, "job_ids": [str(pk) for pk in active_job_ids]},
        )
    return change_state(obj, expected_version, status=LifecycleStatus.ACTIVE, status_reason="")
