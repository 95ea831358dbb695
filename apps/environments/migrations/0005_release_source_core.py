
from django.db import migrations, models


def mark_core_installs(apps, schema_editor):
    # Earlier versions recorded site_create's WordPress install as an upload.
    Release = apps.get_model("environments", "Release")
    Release.objects.filter(source_type="upload", source_ref="wordpress-core").update(source_type="core")


def unmark_core_installs(apps, schema_editor):
    Release = apps.get_model("environments", "Release")
    Release.objects.filter(source_type="core").update(source_type="upload")


class Migration(migrations.Migration):

    dependencies = [
        ('environments', '0004_scrub_repository_credentials'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='release',
            name='release_source_type_valid',
        ),
        migrations.AlterField(
            model_name='release',
            name='source_type',
            field=models.CharField(choices=[('core', 'WordPress core'), ('git', 'Git'), ('upload', 'Upload')], max_length=10),
        ),
        migrations.AddConstraint(
            model_name='release',
            constraint=models.CheckConstraint(condition=models.Q(('source_type__in', ['core', 'git', 'upload'])), name='release_source_type_valid'),
        ),
        migrations.RunPython(mark_core_installs, unmark_core_installs),
    ]
