"""Drift: has production changed, since a staging or clone environment was
copied from it, data that promoting that environment would overwrite?
(docs/promotion.md says why it is defined so.)

The node measures (env_checksums.py); this module keeps baselines, compares
and records. A baseline is production's checksums taken when an environment
is copied from production (before the copy, so a change made while the copy
runs shows as drift rather than being lost); a copy of a copy inherits its
source's baseline. A drift check measures production now and compares it
with the environment's newest baseline:
- drifted: a table a promotion overwrites (neither protected by the
  environment's preset nor volatile) changed, appeared or disappeared, or a
  path of production's code changed;
- reported, not blocking: changes in protected tables (rows added), in
  volatile data (caches, cron schedule, sessions) and in the uploads.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.core.state import change_state
from apps.environments import node_ops
from apps.environments.choices import DriftStatus, EnvironmentType
from apps.environments.models import DriftBaseline, DriftCheck, Environment
from apps.environments.remote import promotion_presets

# How many paths of each kind a report lists (the counts are always complete).
LISTED_CODE_PATHS = 200
LISTED_UPLOAD_PATHS = 20


def production_of(environment: Environment) -> Environment | None:
    return (Environment.objects.select_related("node")
            .filter(site_id=environment.site_id, environment_type=EnvironmentType.PRODUCTION).first())


def current_baseline(environment: Environment) -> DriftBaseline | None:
    return environment.drift_baselines.order_by("-created_at").first()


def record_baseline(environment: Environment, source: Environment, ctx=None) -> DriftBaseline | None:
    """Before ``environment`` is copied from ``source``: production's checksums
    as its baseline (``source`` is production), or ``source``'s own baseline
    (a copy of a copy), or none (the source has none: drift stays unknown)."""
    if source.environment_type == EnvironmentType.PRODUCTION:
        measured = node_ops.checksums(source, ctx)
        return DriftBaseline.objects.create(environment=environment, measured_environment=source,
                                            origin=DriftBaseline.Origin.CLONE, checksums=measured,
                                            taken_at=timezone.now())
    inherited = current_baseline(source)
    if inherited is None:
        return None
    return DriftBaseline.objects.create(environment=environment, measured_environment=inherited.measured_environment,
                                        origin=DriftBaseline.Origin.INHERITED, checksums=inherited.checksums,
                                        taken_at=inherited.taken_at)


def record_refresh_baseline(environment: Environment, production: Environment, measured: dict) -> DriftBaseline:
    """After a refresh from production: its measurement is the new baseline, and
    the environment's drift is unknown until the next check."""
    with transaction.atomic():
        baseline = DriftBaseline.objects.create(environment=environment, measured_environment=production,
                                                origin=DriftBaseline.Origin.REFRESH, checksums=measured,
                                                taken_at=timezone.now())
        saved = Environment.objects.select_for_update().get(pk=environment.pk)
        change_state(saved, drift_status=DriftStatus.UNKNOWN)
    return baseline


def _paths(before: dict, after: dict) -> dict:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(path for path in set(before) & set(after) if before[path] != after[path])
    return {"added": added, "changed": changed, "removed": removed}


def _listed(paths: dict, limit: int) -> dict:
    return {
        "counts": {kind: len(found) for kind, found in paths.items()},
        **{kind: found[:limit] for kind, found in paths.items()},
    }


def _first_changed_key(before: dict, after: dict):
    """For a table chunked by an integer key: the key after which its rows
    first differ (None: from its first row)."""
    if before.get("key") != "integer" or after.get("key") != "integer":
        return None
    last_equal = None
    for old, new in zip(before.get("chunks") or [], after.get("chunks") or []):
        if old != new:
            break
        last_equal = old[0]
    return last_equal


def compare(baseline: dict, now: dict, preset: str) -> dict:
    """What changed in production between ``baseline`` and ``now`` (both from
    env_checksums.py), sorted into what a promotion under ``preset`` would
    overwrite (blocking) and what it keeps (reported)."""
    prefix = now.get("prefix") or baseline.get("prefix") or "wp_"
    tables = []
    old_tables, new_tables = baseline.get("tables") or {}, now.get("tables") or {}
    for name in sorted(set(old_tables) | set(new_tables)):
        old, new = old_tables.get(name), new_tables.get(name)
        if promotion_presets.is_protected_table(name, prefix, preset):
            kind = "protected"
        elif promotion_presets.is_volatile_table(name, prefix):
            kind = "volatile"
        else:
            kind = "overwritten"
        rows_before = old["rows"] if old else None
        rows_now = new["rows"] if new else None
        if old is None or new is None:
            change = "added" if old is None else "removed"
        elif old["checksum"] != new["checksum"]:
            change = "changed"
        else:
            change = None
        if change:
            entry = {"table": name, "change": change, "kind": kind, "blocking": kind == "overwritten",
                     "rows_baseline": rows_before, "rows_now": rows_now,
                     "rows_added": (rows_now or 0) - (rows_before or 0)}
            if change == "changed" and kind == "overwritten" and new.get("key") == "integer":
                entry["changed_after_key"] = _first_changed_key(old, new)
            tables.append(entry)
        old_volatile, new_volatile = (old or {}).get("volatile"), (new or {}).get("volatile")
        if old_volatile and new_volatile and old_volatile != new_volatile:
            tables.append({"table": name, "change": "changed", "kind": "volatile rows", "blocking": False,
                           "rows_baseline": old_volatile["rows"], "rows_now": new_volatile["rows"],
                           "rows_added": new_volatile["rows"] - old_volatile["rows"]})
    code = _paths(baseline.get("code") or {}, now.get("code") or {})
    uploads = _paths(baseline.get("uploads") or {}, now.get("uploads") or {})
    code_changes = sum(len(found) for found in code.values())
    blocking_tables = [entry["table"] for entry in tables if entry["blocking"]]
    drifted = bool(blocking_tables or code_changes)
    return {
        "result": DriftStatus.DRIFTED if drifted else DriftStatus.CLEAN,
        "preset": preset,
        "blocking_tables": blocking_tables,
        "code_changes": code_changes,
        "tables": tables,
        "code": _listed(code, LISTED_CODE_PATHS),
        "uploads": _listed(uploads, LISTED_UPLOAD_PATHS),
        "release_baseline": baseline.get("release"),
        "release_now": now.get("release"),
    }


def summary(report: dict) -> str:
    """One line for logs, the admin and the command."""
    if not report:
        return "no report"
    parts = []
    if report.get("blocking_tables"):
        parts.append("overwritten tables changed: " + ", ".join(report["blocking_tables"]))
    if report.get("code_changes"):
        counts = report["code"]["counts"]
        parts.append(f"code changed ({counts['added']} added, {counts['changed']} changed, "
                     f"{counts['removed']} removed)")
    kept = [f"{entry['table']} ({entry['rows_added']:+d} rows)" for entry in report.get("tables") or []
            if not entry["blocking"]]
    if kept:
        parts.append("kept by the promotion, changed: " + ", ".join(kept))
    uploads = (report.get("uploads") or {}).get("counts") or {}
    if any(uploads.values()):
        parts.append(f"uploads: {uploads.get('added', 0)} added, {uploads.get('changed', 0)} changed, "
                     f"{uploads.get('removed', 0)} removed")
    return f"{report.get('result')}: " + ("; ".join(parts) if parts else "production unchanged since the baseline")


def record_check(environment: Environment, production: Environment, baseline: DriftBaseline, measured: dict,
                 job=None) -> DriftCheck:
    """Compare and record: an immutable DriftCheck, and the environment's
    drift_status, drift_checked_at and last_drift_check with it."""
    report = compare(baseline.checksums, measured, environment.promotion_preset)
    report["baseline_id"] = str(baseline.pk)
    report["baseline_taken_at"] = baseline.taken_at.isoformat()
    with transaction.atomic():
        check = DriftCheck.objects.create(
            environment=environment, measured_environment=production, baseline=baseline,
            preset=environment.promotion_preset, result=report["result"], checksums=measured, report=report, job=job,
        )
        saved = Environment.objects.select_for_update().get(pk=environment.pk)
        change_state(saved, drift_status=check.result, drift_checked_at=check.created_at, last_drift_check=check)
    return check


def promotion_blocker(environment: Environment) -> str | None:
    """Why drift forbids promoting ``environment`` to its production now
    (its last check says drifted, or there is none), or None."""
    if environment.drift_status == DriftStatus.CLEAN:
        return None
    if environment.drift_status == DriftStatus.DRIFTED:
        return "production changed data a promotion would overwrite since this environment's baseline"
    return "drift is unknown: run a drift check first"
