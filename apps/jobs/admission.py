"""Which queued jobs may start now: one rule for the claim and for whom to wake.

- One job runs per site. A site's queued jobs start in order of rank:
  priority first (operator work before scheduled work), then first in,
  first out.
- A node runs up to ``max_site_jobs`` site jobs at once; a node-wide job
  (no site: provisioning, node checks) runs alone on its node.
- A free slot on a node goes to the best-ranked job that could take it: a
  scheduled job does not start while an operator's job that could start on
  the same node waits.

The claim (``services.claim_job``) checks ``refusal`` under the node and site
row locks, so two claims never both take the last slot; ``runnable_heads``
picks the jobs worth telling a worker about, without locks: a message for a
job that cannot start after all costs one refused claim.
"""

from django.db.models import Count, Q
from django.utils import timezone

from apps.jobs.choices import JobStatus
from apps.jobs.models import Job
from apps.nodes.models import Node

# How many queued jobs one look at the queue considers.
SCAN_LIMIT = 500


def due(now=None) -> Q:
    now = now or timezone.now()
    return Q(run_after__isnull=True) | Q(run_after__lte=now)


def ranks_before(job) -> Q:
    """Queued jobs that rank before ``job``."""
    return Q(priority__lt=job.priority) | Q(priority=job.priority, created_at__lt=job.created_at)


def refusal(job, node, now) -> str | None:
    """Why ``job`` cannot start now (None: it can). Called with the node and site rows locked."""
    running = Job.objects.filter(status=JobStatus.RUNNING)
    if job.site_id and running.filter(site_id=job.site_id).exists():
        return "site busy"
    if job.site_id and Job.objects.filter(site_id=job.site_id, status=JobStatus.QUEUED).filter(due(now)).filter(
            ranks_before(job)).exclude(pk=job.pk).exists():
        return "an earlier job of the site waits"
    if not job.node_id:
        return None
    on_node = running.filter(node_id=job.node_id)
    if job.site_id is None:
        return "node busy" if on_node.exists() else None
    if on_node.filter(site__isnull=True).exists():
        return "a node-wide job runs"
    slots = node.max_site_jobs if node is not None else 1
    if on_node.count() >= slots:
        return "no free slot on the node"
    if _better_job_waits_for_node(job, now):
        return "a higher-priority job waits for the node"
    return None


def _better_job_waits_for_node(job, now) -> bool:
    busy_sites = Job.objects.filter(status=JobStatus.RUNNING, site__isnull=False).values("site_id")
    return (
        Job.objects.filter(node_id=job.node_id, status=JobStatus.QUEUED, priority__lt=job.priority)
        .filter(due(now))
        .exclude(site_id__in=busy_sites)
        .exists()
    )


def runnable_heads(scope: Q | None = None, limit: int = 10, exclude_recent_since=None) -> list[Job]:
    """Queued, due jobs (within ``scope``) that could start now, best first:
    each site's best-ranked job, as many per node as it has free slots."""
    now = timezone.now()
    queued = Job.objects.filter(status=JobStatus.QUEUED).filter(due(now))
    if scope is not None:
        queued = queued.filter(scope)
    candidates = list(queued.order_by("priority", "created_at")[:SCAN_LIMIT])
    if not candidates:
        return []
    node_ids = {job.node_id for job in candidates if job.node_id}
    running = Job.objects.filter(status=JobStatus.RUNNING)
    busy_sites = set(running.filter(site__isnull=False).values_list("site_id", flat=True))
    running_on = dict(running.filter(node_id__in=node_ids).values_list("node_id").annotate(n=Count("pk")))
    node_wide = set(running.filter(node_id__in=node_ids, site__isnull=True).values_list("node_id", flat=True))
    slots = dict(Node.objects.filter(pk__in=node_ids).values_list("pk", "max_site_jobs"))

    heads, seen_sites = [], set()
    for job in candidates:
        if job.site_id:
            if job.site_id in seen_sites:
                continue  # not its site's head
            seen_sites.add(job.site_id)
            if job.site_id in busy_sites:
                continue
        if job.node_id:
            taken = running_on.get(job.node_id, 0)
            if job.node_id in node_wide or (job.site_id is None and taken) or taken >= slots.get(job.node_id, 1):
                continue
            running_on[job.node_id] = taken + 1  # the slot this wake-up means to fill
            if job.site_id is None:
                node_wide.add(job.node_id)
        if exclude_recent_since and job.last_dispatched_at and job.last_dispatched_at >= exclude_recent_since:
            continue
        heads.append(job)
        if len(heads) >= limit:
            break
    return heads
