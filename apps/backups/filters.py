import django_filters

from apps.backups.choices import BackupScope, BackupStatus
from apps.backups.models import Backup
from apps.core.filters import ContractFilterSet


class BackupFilter(ContractFilterSet):
    status = django_filters.ChoiceFilter(choices=BackupStatus.choices, help_text="Only backups in this status.")
    backup_scope = django_filters.ChoiceFilter(choices=BackupScope.choices, help_text="Only backups of this scope.")

    class Meta:
        model = Backup
        fields = ["status", "backup_scope"]
