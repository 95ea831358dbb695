"""Recording releases and their health (state changes of Release rows)."""

from django.db import transaction
from django.utils import timezone

from apps.core.state import change_state
from apps.environments.choices import ReleaseHealth
from apps.environments.models import Environment, Release


def record_release(environment: Environment, directory: str, source_type: str, source_ref: str) -> Release:
    """The release directory now exists on the node: make sure a row says so (idempotent)."""
    with transaction.atomic():
        release, _ = Release.objects.get_or_create(
            environment=environment,
            directory=directory,
            defaults={"source_type": source_type, "source_ref": source_ref},
        )
    return release


def make_current(environment: Environment, release: Release) -> Environment:
    environment.refresh_from_db()
    if environment.current_release_id == release.pk:
        return environment
    return change_state(environment, current_release=release)


def record_health(release: Release, healthy: bool) -> Release:
    release.refresh_from_db()
    return change_state(
        release,
        health=ReleaseHealth.HEALTHY if healthy else ReleaseHealth.UNHEALTHY,
        health_checked_at=timezone.now(),
    )



def last_healthy_release(environment: Environment, *, exclude: Release | None = None, prefer: Release | None = None):
    """The release to go back to: ``prefer`` if healthy, else the newest healthy one."""
    if prefer is not None and (exclude is None or prefer.pk != exclude.pk):
        prefer.refresh_from_db()
        if prefer.health == ReleaseHealth.HEALTHY:
            return prefer
    candidates = Release.objects.filter(environment=environment, health=ReleaseHealth.HEALTHY).order_by("-created_at")
    if exclude is not None:
        candidates = candidates.exclude(pk=exclude.pk)
    return candidates.first()


def forget_pruned(environment: Environment, directories: list[str]) -> int:
    """The node removed these release directories: their rows go too, so no
    rollback can aim at code that is no longer there. Never the current one."""
    if not directories:
        return 0
    environment.refresh_from_db()
    stale = Release.objects.filter(environment=environment, directory__in=directories)
    if environment.current_release_id:
        stale = stale.exclude(pk=environment.current_release_id)
    deleted, _ = stale.delete()
    return deleted
