"""job_type -> handler. Each domain's jobs.py registers its handlers on import."""

import importlib
from dataclasses import dataclass
from typing import Callable

from django.apps import apps as django_apps
from django.conf import settings

from apps.core.choices import LifecycleStatus


@dataclass(frozen=True)
class HandlerSpec:
    job_type: str
    func: Callable
    # Status the job's site and environment take while it runs (None: untouched).
    running_status: LifecycleStatus | None
    timeout_seconds: int | None
    # Payload key naming a second environment the job reads from (a clone's
    # source): it also shows running_status while the job runs, and is always
    # back to active afterwards, as the job does not change it.
    marks_source: str | None = None


_HANDLERS: dict[str, HandlerSpec] = {}
_loaded = False


def job_handler(job_type: str, *, running_status: LifecycleStatus | None = None, timeout_seconds: int | None = None,
                marks_source: str | None = None):
    def register(func):
        existing = _HANDLERS.get(job_type)
        if existing is not None and existing.func is not func:
            raise RuntimeError(f"job type {job_type!r} already has a handler: {existing.func!r}")
        _HANDLERS[job_type] = HandlerSpec(job_type, func, running_status, timeout_seconds, marks_source)
        return func

    return register


# Called by jobs.services.end_run, in its transaction, when a run ends other
# than succeeded (failed, cancelled, or requeued to run again): what a domain
# left unfinished for the job (a backup it was taking) learns why.
# Each is called as hook(job, was_running), the job row already updated.
_ENDING_HOOKS: list[Callable] = []


def on_unsuccessful_end(func):
    """Register ``func(job, was_running)`` (a domain's jobs.py, on import)."""
    if func not in _ENDING_HOOKS:
        _ENDING_HOOKS.append(func)
    return func


def ending_hooks() -> list[Callable]:
    load_handlers()
    return list(_ENDING_HOOKS)


def unregister(job_type: str) -> None:
    _HANDLERS.pop(job_type, None)


def load_handlers() -> None:
    """Import every app's jobs module (and the configured extra modules) once."""
    global _loaded
    if _loaded:
        return
    for config in django_apps.get_app_configs():
        if config.name.startswith("apps."):
            try:
                importlib.import_module(f"{config.name}.jobs")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.jobs":
                    raise
    for module in settings.JOB_HANDLER_MODULES:
        importlib.import_module(module)
    _loaded = True


def get_handler(job_type: str) -> HandlerSpec | None:
    load_handlers()
    return _HANDLERS.get(job_type)


def registered_job_types() -> list[str]:
    load_handlers()
    return sorted(_HANDLERS)
