import django_filters

from apps.core.choices import LifecycleStatus
from apps.core.filters import ContractFilterSet
from apps.sites.models import Site


class SiteFilter(ContractFilterSet):
    status = django_filters.ChoiceFilter(choices=LifecycleStatus.choices, help_text="Only sites in this status.")

    class Meta:
        model = Site
        fields = ["status"]
