"""The top bar's unread-notification count reads a partial index of the unread rows only."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0003_hot_policies_first'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(condition=models.Q(('read_at__isnull', True)), fields=['tenant', 'user'], name='notification_unread'),
        ),
    ]
