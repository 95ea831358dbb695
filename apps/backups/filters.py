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


class AllBackupsFilter(BackupFilter):
    """``GET /backups``: any site's or environment's backups (those of deleted ones too)."""

    site = django_filters.UUIDFilter(field_name="site_id", help_text="Only backups of this site.")
    environment = django_filters.UUIDFilter(field_name="environment_id", help_text="Only backups of this environment.")

    class Meta:
        model = Backup
        fields = ["status", "backup_scope", "site", "environment"]
