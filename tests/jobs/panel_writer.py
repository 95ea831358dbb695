"""Plays the panel for the SQLite test: creates sites and nodes and enqueues
jobs one request-sized transaction at a time while a worker runs.

    python -m tests.jobs.panel_writer COUNT
"""

import sys

import django


def main(count: int) -> None:
    django.setup()
    from django.db import transaction

    from apps.audit.choices import AuditResult
    from apps.audit.models import AuditEntry
    from apps.environments.factories import EnvironmentFactory
    from apps.jobs import services
    from apps.jobs.models import Job
    from apps.nodes.factories import NodeFactory
    from apps.sites.factories import SiteFactory

    nodes = [NodeFactory() for _ in range(3)]
    environments = [
        EnvironmentFactory(site=SiteFactory(), node=nodes[index % 3], slug="production") for index in range(5)
    ]
    for index in range(count):
        with transaction.atomic():
            if index % 5 == 4:
                job = services.enqueue_job("test_record", node=nodes[index % 3], payload={"sleep": 0.01})
            else:
                job = services.enqueue_job(
                    "test_record", environment=environments[index % 5], payload={"sleep": 0.01}
                )
            AuditEntry.objects.create(action="test.enqueue", result=AuditResult.ACCEPTED, job=job)
        # What a job list page does between requests.
        list(Job.objects.order_by("-created_at")[:20])
    print(f"enqueued {count}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
