from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0002_job_retry_of'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='job',
            name='one_running_job_per_node',
        ),
        migrations.AddField(
            model_name='job',
            name='priority',
            field=models.PositiveSmallIntegerField(choices=[(0, 'Operator'), (10, 'Scheduled')], default=0),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(fields=['status', 'priority', 'created_at'], name='job_queue_order'),
        ),
    ]
