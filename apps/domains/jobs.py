"""Job handlers of the domains domain: each runs ``domain_sync.py`` once
(twice when a certificate is refused: the second run takes the refused
hostname's TLS out of the server block); ``panel_https`` runs
``panel_https.py`` on the local node."""

from datetime import datetime

from django.conf import settings
from django.db import transaction

from apps.domains import dns_check, node_ops, preview, services
from apps.domains.choices import TlsStatus
from apps.domains.models import Domain
from apps.domains.node_ops import DomainState
from apps.environments.models import Environment
from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler
from apps.jobs.scheduler import JobScope, recurring_job
from apps.nodes.remote_exec import run_program

from apps.domains import panel_https  # the panel's own domain: panel_https below

TIMEOUT = 20 * 60


def _states(domains, *, certified: set[str], primary: str | None) -> list[DomainState]:
    return [DomainState(domain.hostname, domain.hostname in certified, domain.hostname == primary)
            for domain in sorted(domains, key=lambda domain: (domain.created_at, domain.hostname))]


def _apply(ctx, environment, *, issue: Domain | None = None, remove: Domain | None = None,
           make_primary: Domain | None = None) -> dict:
    """Bring the node to the environment's domains with ``issue`` certified,
    ``remove`` gone and the primary chosen; then record it."""
    domains = [domain for domain in environment.domains.all() if remove is None or domain.pk != remove.pk]
    certified_now = {domain.hostname for domain in domains if domain.tls_status == TlsStatus.ACTIVE}
    primary_now = next((domain.hostname for domain in environment.domains.all() if domain.is_primary), None)
    certified_after = certified_now | ({issue.hostname} if issue else set())
    if make_primary is not None:
        primary_after = make_primary.hostname
    elif primary_now and (remove is None or primary_now != remove.hostname):
        primary_after = primary_now
    else:
        # The first domain with a certificate, in the order they were attached.
        primary_after = next((state.hostname for state in _states(domains, certified=certified_after, primary=None)
                              if state.certified), None)
    before_domains = domains if remove is None else [*domains, remove]
    before = _states(before_domains, certified=certified_now, primary=primary_now)
    after = _states(domains, certified=certified_after, primary=primary_after)
    result = node_ops.sync(environment, before=before, after=after, issue=[issue.hostname] if issue else [],
                           delete_certificates=[remove.hostname] if remove else [], ctx=ctx)
    if issue is not None and issue.hostname in result["failed"]:
        message = result["failed"][issue.hostname]
        services.record_tls_failed(issue, message)
        with ctx.step(f"serve {issue.hostname} without TLS until a certificate is issued"):
            node_ops.sync(environment, before=before, after=before, issue=[], delete_certificates=[], ctx=ctx)
        raise JobError("certificate_failed", message, resource_intact=True)
    ctx.checkpoint()
    with transaction.atomic():
        if issue is not None:
            expires = result["issued"].get(issue.hostname)
            services.record_issued(issue, datetime.fromisoformat(expires) if expires else None)
        if remove is not None:
            Domain.objects.filter(pk=remove.pk).delete()
        services.record_primary(environment, environment.domains.filter(hostname=primary_after).first()
                                if primary_after else None)
    rewrite = result.get("rewrite")
    outcome = {"url": node_ops.canonical_url(environment, after), "primary": primary_after}
    if rewrite:
        leftovers = sum((rewrite.get("remaining") or {}).values())
        outcome.update(rewritten_rows=rewrite.get("rows_changed", 0), leftovers=leftovers)
        ctx.log(f"site URL now {outcome['url']}: {rewrite.get('rows_changed', 0)} rows rewritten, "
                f"{leftovers} occurrence(s) of the old URL left")
    return outcome


@job_handler("domain_add", timeout_seconds=TIMEOUT)
def domain_add(ctx):
    """DNS checked first (nothing is written when it does not point at the
    node), then the server block, the certificate (HTTP-01), HTTPS; the first
    domain with a certificate becomes primary and the site's URLs move to it.
    Also the recurring retry of domains still waiting for their certificate."""
    environment = Environment.objects.select_related("node", "site").get(pk=ctx.job.environment_id)
    hostname = ctx.payload["hostname"]
    domain = Domain.objects.filter(hostname=hostname).first()
    if domain is not None and domain.environment_id != environment.pk:
        raise JobError("domain_exists", f"{hostname} is attached to {domain.environment} already.")
    if domain is not None and domain.tls_status == TlsStatus.ACTIVE:
        ctx.log(f"{hostname} is attached and has its certificate")
        ctx.result = {"domain_id": str(domain.pk), "tls_status": domain.tls_status}
        return
    with ctx.step(f"DNS of {hostname}"):
        verdict = dns_check.check(hostname, environment.node)
        ctx.log(f"{hostname} points at {environment.node.name}" if verdict.points else verdict.problem)
    attached_before = domain is not None
    if domain is None:
        if not verdict.points and ctx.payload.get("check_dns", True):
            raise JobError("dns_not_pointing", f"{hostname} does not point at {environment.node.name}: "
                                               f"{verdict.problem}.")
        domain = services.record_attached(environment, hostname)
    ctx.result = {"domain_id": str(domain.pk)}
    if not verdict.points and attached_before:
        # A retry while DNS still points elsewhere: its server block is in place already.
        ctx.log(f"{hostname} still waits for DNS; its certificate is asked for once DNS points at the node")
        ctx.result["tls_status"] = domain.tls_status
        return
    if not verdict.points:
        with ctx.step(f"server block for {hostname} (TLS waits for DNS)"):
            _apply(ctx, environment)
        ctx.log(f"{hostname} is attached; its certificate is asked for once DNS points at the node")
        ctx.result["tls_status"] = domain.tls_status
        return
    with ctx.step(f"server block and certificate for {hostname}"):
        ctx.result.update(_apply(ctx, environment, issue=domain))
    ctx.result["tls_status"] = TlsStatus.ACTIVE


@recurring_job("domain_add", every_minutes=15)
def domains_waiting_for_tls():
    for domain in services.waiting_for_tls():
        yield JobScope(dedup_key=services.add_dedup_key(domain.hostname), environment=domain.environment,
                       site=domain.environment.site, node=domain.environment.node,
                       payload={"hostname": domain.hostname, "check_dns": False, "retry": True})


@job_handler(panel_https.JOB_TYPE, timeout_seconds=TIMEOUT)
def panel_https_configure(ctx):
    """The panel on its control plane domain over HTTPS, on the local node:
    DNS checked first (nothing is written when it does not point at the
    node, unless the job was asked not to check), then a server block
    proxying to the panel's web server, the certificate (HTTP-01), HTTPS.
    With the domain cleared, the block and the certificate go."""
    node = ctx.job.node
    hostname = panel_https.effective_domain()
    if hostname:
        if Domain.objects.filter(hostname=hostname).exists():
            # One certificate and one server name per hostname on the node: a site has it.
            raise JobError("domain_exists", f"{hostname} is attached to a site's environment: the panel cannot be "
                                            "served on it too.")
        if ctx.payload.get("check_dns", True):
            with ctx.step(f"DNS of {hostname}"):
                dns_check.require(hostname, node)
                ctx.log(f"{hostname} points at {node.name}")
        params = {"hostname": hostname, "vhost_before_issue": panel_https.render(hostname, certified=False),
                  "vhost": panel_https.render(hostname, certified=True), "acme": node_ops.acme_params()}
        step = f"serve the panel on https://{hostname}"
    else:
        params = {"hostname": ""}
        step = "stop serving the panel on a domain of its own"
    params["listen_address"] = settings.NODE_LISTEN_ADDRESS
    with ctx.step(step):
        ctx.result = run_program(node, "panel_https.py", params, ctx=ctx, timeout=node_ops.SYNC_TIMEOUT)


@job_handler("domain_remove", timeout_seconds=TIMEOUT)
def domain_remove(ctx):
    """Its server block and certificate go; if it was primary, the site's
    URLs move to the next domain with a certificate, or the preview URL."""
    domain = Domain.objects.filter(pk=ctx.payload["domain_id"]).first()
    if domain is None:
        ctx.log(f"{ctx.payload.get('hostname')} is not attached (any more): nothing to do")
        return
    environment = Environment.objects.select_related("node", "site").get(pk=domain.environment_id)
    with ctx.step(f"remove {domain.hostname}"):
        ctx.result = _apply(ctx, environment, remove=domain)
    ctx.log(f"{domain.hostname} removed")


@job_handler("domain_primary", timeout_seconds=TIMEOUT)
def domain_primary(ctx):
    """The site's URLs move to this domain; the other domains answer 301 to it."""
    domain = Domain.objects.filter(pk=ctx.payload["domain_id"]).first()
    if domain is None:
        raise JobError("bad_parameters", f"{ctx.payload.get('hostname')} is not attached any more.")
    if domain.tls_status != TlsStatus.ACTIVE:
        raise JobError("certificate_failed", f"{domain.hostname} has no certificate, so it cannot be primary.")
    environment = Environment.objects.select_related("node", "site").get(pk=domain.environment_id)
    with ctx.step(f"make {domain.hostname} the primary domain"):
        ctx.result = _apply(ctx, environment, make_primary=domain)


@job_handler("preview_cert_issue", timeout_seconds=preview.TIMEOUT + 300)
def preview_cert_issue(ctx):
    """Node scope: the preview domain's wildcard certificate on this node by
    DNS-01, and the credentials file its renewals use brought up to date.
    Queued for every active node when the preview settings change; the jobs
    that set up an environment ask for the same before its server block."""
    node = ctx.job.node
    config = preview.effective()
    if not config.domain or config.provider is None:
        ctx.log("no preview domain is configured (any more): nothing to do")
        return
    with ctx.step(f"wildcard certificate *.{config.domain} on {node.name} ({config.provider.name})"):
        result = preview.ensure_certificate(node, config.domain, ctx=ctx)
    ctx.result = {"domain": config.domain, "certificate_name": result.get("certificate_name"),
                  "issued": bool(result.get("issued")), "not_after": result.get("not_after")}
    ctx.log(f"*.{config.domain} on {node.name} valid until {result.get('not_after')}")
