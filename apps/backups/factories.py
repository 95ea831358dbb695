import factory

from apps.backups.choices import BackupScope
from apps.backups.models import Backup


class BackupFactory(factory.django.DjangoModelFactory):
    """Pass ``environment`` explicitly."""

    class Meta:
        model = Backup

    backup_scope = BackupScope.FULL
    storage_path = factory.Sequence(lambda n: f"backups/{n}.tar.gz")
