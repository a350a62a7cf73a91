"""Lead.external_id: the record's id in the system it came from (a CSV import), unique per tenant when given."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0012_duplicate_pairs'),
        ('scoring', '0006_row_level_security'),
        ('tenancy', '0005_row_level_security'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='lead',
            name='external_id',
            field=models.CharField(blank=True, db_default='', max_length=200),
        ),
        migrations.AddConstraint(
            model_name='lead',
            constraint=models.UniqueConstraint(condition=models.Q(('external_id', ''), _negated=True), fields=('tenant', 'external_id'), name='lead_unique_external_id_per_tenant', violation_error_message='A lead with this external id already exists.'),
        ),
    ]
