"""Domains: attaching, making primary, removing; and recording what the node did.

The API, the admin and the management commands call these; each enqueues one
job whose handler (apps/domains/jobs.py) does the node's part.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import LifecycleStatus
from apps.core.errors import ApiError
from apps.core.state import change_state
from apps.domains import hostnames
from apps.domains.choices import TlsStatus
from apps.domains.models import Domain
from apps.environments.models import Environment
from apps.jobs.choices import ACTIVE
from apps.jobs.models import Job
from apps.jobs.services import enqueue_job


def add_dedup_key(hostname: str) -> str:
    return f"domain:{hostname}"


def _active_environment(environment_id) -> Environment:
    environment = (Environment.objects.select_for_update(no_key=True).select_related("site", "node")
                   .filter(pk=environment_id).first())
    if environment is None:
        raise ApiError("not_found", "No environment with this id.")
    if environment.status != LifecycleStatus.ACTIVE:
        raise ApiError("environment_not_active", f"The environment is {environment.status}, not active.",
                       {"status": environment.status})
    return environment


def request_add(environment_id, raw_hostname, *, check_dns: bool = True, user=None) -> Job:
    """Queue ``domain_add`` for a valid hostname no environment has (400 / 404 /
    409 ``domain_exists`` / 409 ``environment_not_active``). Nothing is written
    but the job: its handler checks DNS first."""
    hostname = hostnames.normalize(raw_hostname)
    if hostname == _panel_domain():
        raise ApiError("domain_exists", f"{hostname} is the panel's own domain (control_plane_domain).",
                       {"hostname": hostname})
    with transaction.atomic():
        environment = _active_environment(environment_id)
        taken = Domain.objects.filter(hostname=hostname).select_related("environment").first()
        if taken is not None:
            raise ApiError("domain_exists", f"{hostname} is attached to {taken.environment} already.",
                           {"hostname": hostname})
        if Job.objects.filter(job_type="domain_add", dedup_key=add_dedup_key(hostname), status__in=ACTIVE).exists():
            raise ApiError("domain_exists", f"{hostname} is being attached already.", {"hostname": hostname})
        try:
            with transaction.atomic():
                return enqueue_job("domain_add", environment=environment, user=user,
                                   dedup_key=add_dedup_key(hostname),
                                   payload={"hostname": hostname, "check_dns": bool(check_dns)})
        except IntegrityError:
            raise ApiError("domain_exists", f"{hostname} is being attached already.", {"hostname": hostname}) from None


def _panel_domain() -> str:
    from apps.domains import panel_https
    from apps.jobs.errors import JobError

    try:
        return panel_https.effective_domain()
    except JobError:
        return ""


def _domain_for_change(domain_id) -> Domain:
    domain = Domain.objects.select_related("environment__site", "environment__node").filter(pk=domain_id).first()
    if domain is None:
        raise ApiError("not_found", "No domain with this id.")
    _active_environment(domain.environment_id)
    return domain


def request_remove(domain_id, user=None) -> Job:
    """Queue ``domain_remove``: its server block and certificate go; if it was
    primary, the site's URLs move to the next domain or the preview URL."""
    with transaction.atomic():
        domain = _domain_for_change(domain_id)
        return enqueue_job("domain_remove", environment=domain.environment, user=user,
                           payload={"domain_id": str(domain.pk), "hostname": domain.hostname})


def request_primary(domain_id, user=None) -> Job:
    """Queue ``domain_primary``: the site's URLs move to this domain (409
    ``domain_not_ready`` until it has its certificate)."""
    with transaction.atomic():
        domain = _domain_for_change(domain_id)
        if domain.tls_status != TlsStatus.ACTIVE:
            raise ApiError("domain_not_ready", f"{domain.hostname} has no certificate yet (TLS {domain.tls_status}).",
                           {"tls_status": domain.tls_status})
        return enqueue_job("domain_primary", environment=domain.environment, user=user,
                           payload={"domain_id": str(domain.pk), "hostname": domain.hostname})


# --- what the jobs record ----------------------------------------------------

def record_attached(environment, hostname: str) -> Domain:
    return Domain.objects.create(environment=environment, hostname=hostname, tls_status=TlsStatus.PENDING)


def record_issued(domain: Domain, expires_at) -> Domain:
    return change_state(domain, tls_status=TlsStatus.ACTIVE, tls_expires_at=expires_at, tls_error="")


def record_certificate_expiry(node, report: dict) -> int:
    """From a node's health report: the expiry of each active domain's
    certificate as the node has it now (a renewal moves it on). Returns how
    many domains changed."""
    found = (report.get("certificates") or {}) if isinstance(report, dict) else {}
    expiries = found.get("certificates") if isinstance(found, dict) else None
    if not isinstance(expiries, dict):
        return 0
    changed = 0
    for domain in Domain.objects.filter(environment__node=node, tls_status=TlsStatus.ACTIVE):
        stamp = expiries.get(domain.hostname)
        try:
            expires_at = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
        except ValueError:
            expires_at = None
        if expires_at is not None and expires_at != domain.tls_expires_at:
            change_state(domain, tls_expires_at=expires_at)
            changed += 1
    return changed


def record_tls_failed(domain: Domain, message: str) -> Domain:
    return change_state(domain, tls_status=TlsStatus.FAILED, tls_error=message[:2000])


def record_primary(environment, primary: Domain | None) -> None:
    """One primary per environment (a database constraint): the old one first;
    the environment's ``primary_domain`` follows."""
    with transaction.atomic():
        Domain.objects.filter(environment=environment, is_primary=True).exclude(
            pk=primary.pk if primary else None).update(is_primary=False, updated_at=timezone.now())
        if primary is not None and not primary.is_primary:
            change_state(primary, is_primary=True)
        current = Environment.objects.select_for_update(no_key=True).get(pk=environment.pk)
        if current.primary_domain_id != (primary.pk if primary else None):
            change_state(current, primary_domain=primary)


def waiting_for_tls():
    """Domains attached without a certificate (DNS not pointing yet, or refused):
    the recurring ``domain_add`` tries them again."""
    return (Domain.objects.filter(tls_status__in=[TlsStatus.PENDING, TlsStatus.FAILED],
                                  environment__status=LifecycleStatus.ACTIVE)
            .select_related("environment__site", "environment__node"))


# --- the panel's own domain (apps/domains/panel_https.py) --------------------

def request_panel_https(user=None, *, check_dns: bool = True) -> Job | None:
    """Queue ``panel_https`` on the local node: the panel served over HTTPS on
    its control plane domain, or no longer served when the domain was
    cleared. The job reads the domain when it runs, so a job still queued
    serves for a later change too. None when the panel's machine is not a
    node the panel manages (no local node, or a decommissioned one): then a proxy of
    the operator's own serves the domain."""
    from apps.domains.panel_https import JOB_TYPE
    from apps.nodes.choices import NodeStatus
    from apps.nodes.models import Node

    with transaction.atomic():
        node = (Node.objects.select_for_update().filter(is_local=True).exclude(status=NodeStatus.DECOMMISSIONED)
                .first())
        if node is None:
            return None
        waiting = Job.objects.filter(job_type=JOB_TYPE, status="queued").order_by("-created_at").first()
        if waiting is not None and waiting.payload.get("check_dns", True) == bool(check_dns):
            return waiting
        return enqueue_job(JOB_TYPE, node=node, user=user, payload={"check_dns": bool(check_dns)})


def control_plane_domain_changed() -> Job | None:
    """The Panel setting changed (apps.core.panel_settings.update): queue
    ``panel_https``, unless PRESSLUFT_CONTROL_PLANE_DOMAIN wins over it
    (then nothing changes for the panel)."""
    from apps.domains import panel_https

    if panel_https.from_environment():
        return None
    return request_panel_https()
