import django_filters

from apps.core.filters import ContractFilterSet
from apps.jobs.choices import JobStatus
from apps.jobs.models import Job


class JobFilter(ContractFilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices, help_text="Only jobs in this status.")
    job_type = django_filters.CharFilter(help_text="Only jobs of this type.")
    site = django_filters.UUIDFilter(field_name="site_id", help_text="Only jobs of this site.")
    environment = django_filters.UUIDFilter(field_name="environment_id", help_text="Only jobs of this environment.")
    node = django_filters.UUIDFilter(field_name="node_id", help_text="Only jobs on this node.")

    class Meta:
        model = Job
        fields = ["status", "job_type", "site", "environment", "node"]
