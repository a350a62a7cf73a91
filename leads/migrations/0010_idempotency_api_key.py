"""Idempotency-Key records of an integration's lead batch (`POST /api/v1/leads/batch/`): scoped to its API key
instead of a form, one or the other."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0009_row_level_security'),
        ('tenancy', '0005_row_level_security'),
    ]

    operations = [
        migrations.AddField(
            model_name='idempotencyrecord',
            name='api_key',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.apikey'),
        ),
        migrations.AlterField(
            model_name='idempotencyrecord',
            name='form',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='leads.leadform'),
        ),
        migrations.AddConstraint(
            model_name='idempotencyrecord',
            constraint=models.UniqueConstraint(fields=('tenant', 'api_key', 'key'), name='idempotency_unique_key_per_api_key'),
        ),
        migrations.AddConstraint(
            model_name='idempotencyrecord',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('api_key__isnull', True), ('form__isnull', False)), models.Q(('api_key__isnull', False), ('form__isnull', True)), _connector='OR'), name='idempotency_form_or_api_key', violation_error_message='An idempotency record belongs to a form or to an API key, not both.'),
        ),
    ]
