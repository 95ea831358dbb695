import django_filters

from apps.core.filters import ContractFilterSet
from apps.domains.choices import TlsStatus
from apps.domains.models import Domain


class DomainFilter(ContractFilterSet):
    tls_status = django_filters.ChoiceFilter(choices=TlsStatus.choices, help_text="Only domains with this TLS status.")

    class Meta:
        model = Domain
        fields = ["tls_status"]
