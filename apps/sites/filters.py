import django_filters

from apps.core.choices import LifecycleStatus
from apps.sites.models import Site


class SiteFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=LifecycleStatus.choices, help_text="Only sites in this status.")

    class Meta:
        model = Site
        fields = ["status"]
