import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nodes', '0003_node_manage_permission'),
    ]

    operations = [
        migrations.AddField(
            model_name='node',
            name='max_site_jobs',
            field=models.PositiveSmallIntegerField(default=1, help_text='How many site jobs may run on the node at once (one per site always; node-wide jobs such as provisioning run alone).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(16)]),
        ),
        migrations.AddConstraint(
            model_name='node',
            constraint=models.CheckConstraint(condition=models.Q(('max_site_jobs__gte', 1), ('max_site_jobs__lte', 16)), name='node_max_site_jobs_range'),
        ),
    ]
