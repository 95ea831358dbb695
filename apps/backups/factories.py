import factory

from apps.backups.choices import BackupScope
from apps.backups.models import Backup


class BackupFactory(factory.django.DjangoModelFactory):
    """Pass ``environment`` explicitly."""

    class Meta:
        model = Backup

    site_id = factory.LazyAttribute(lambda backup: backup.environment.site_id)
    site_slug = factory.LazyAttribute(lambda backup: backup.environment.site.slug)
    environment_slug = factory.LazyAttribute(lambda backup: backup.environment.slug)
    environment_uid = factory.LazyAttribute(lambda backup: backup.environment.pk)
    environment_url = factory.LazyAttribute(lambda backup: backup.environment.preview_url)
    backup_scope = BackupScope.FULL
    storage_path = factory.Sequence(lambda n: f"backups/{n}.tar.gz")
