import django_filters

from apps.core.choices import LifecycleStatus
from apps.core.filters import ContractFilterSet
from apps.environments.choices import EnvironmentType
from apps.environments.models import Environment


class EnvironmentFilter(ContractFilterSet):
    status = django_filters.ChoiceFilter(choices=LifecycleStatus.choices, help_text="Only environments in this status.")
    type = django_filters.ChoiceFilter(
        field_name="environment_type", choices=EnvironmentType.choices, help_text="Only environments of this type."
    )

    class Meta:
        model = Environment
        fields = ["status", "type"]
