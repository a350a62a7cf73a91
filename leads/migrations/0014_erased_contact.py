"""Privacy requests: the hashed list of erased people (with its row-level security) and `Lead.erased_at`; an
erased lead keeps its row with neither email nor phone."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0013_lead_external_id'),
        ('scoring', '0006_row_level_security'),
        ('tenancy', '0005_row_level_security'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ErasedContact',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email_hash', models.CharField(help_text='sha256 (hex) of PRIVACY_HASH_PEPPER + the normalised email.', max_length=64)),
                ('erased_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name='lead',
            name='lead_has_email_or_phone',
        ),
        migrations.AddField(
            model_name='lead',
            name='erased_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddConstraint(
            model_name='lead',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('email', ''), ('phone', ''), _negated=True), ('erased_at__isnull', False), _connector='OR'), name='lead_has_email_or_phone', violation_error_message='A lead needs an email or a phone number.'),
        ),
        migrations.AddField(
            model_name='erasedcontact',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant'),
        ),
        migrations.AddConstraint(
            model_name='erasedcontact',
            constraint=models.UniqueConstraint(fields=('tenant', 'email_hash'), name='erasedcontact_unique_hash_per_tenant', violation_error_message='This person is already erased.'),
        ),
        TenantRowLevelSecurity("leads_erasedcontact"),
    ]
