"""The call/email/meeting outcome taxonomy (ActivityOutcome), and its defaults for every existing tenant.

The data step is idempotent (it creates only the default codes a tenant lacks) and tenant by tenant;
the reverse keeps the rows (the table goes with the schema step)."""

import django.db.models.deletion
from django.db import migrations, models


def outcomes_for_existing_tenants(apps, schema_editor):
    from leads.activity_outcomes import activity_outcomes_seed

    Tenant = apps.get_model("tenancy", "Tenant")
    ActivityOutcome = apps.get_model("leads", "ActivityOutcome")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    for tenant_id in Tenant._base_manager.order_by("pk").values_list("pk", flat=True):
        created = activity_outcomes_seed(tenant_id=tenant_id, model=ActivityOutcome)
        if created:
            AuditEvent._base_manager.create(
                tenant_id=tenant_id, actor_kind="system", actor_name="Migration leads.0007",
                action="activity_outcomes.defaults_created", object_type="tenancy.tenant", object_id=str(tenant_id),
                changes={}, metadata={"codes": created})


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0006_lead_hot_updates'),
        ('tenancy', '0003_routing_fields'),
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='ActivityOutcome',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.SlugField(db_index=False, help_text='Short and stable, e.g. no_answer: activities keep it, dashboards group by it.', max_length=48)),
                ('label', models.CharField(help_text='What reps pick from in the log-activity form.', max_length=100)),
                ('kind', models.CharField(choices=[('call', 'Calls'), ('email', 'Emails'), ('meeting', 'Meetings'), ('any', 'Any activity')], default='any', help_text='The activities it is offered for.', max_length=8)),
                ('counts_as_contact', models.BooleanField(default=False, help_text='The rep reached the person: stops the first-contact SLA clock and resets the count of unanswered attempts. Otherwise it is an attempt.')),
                ('position', models.PositiveIntegerField(default=0)),
                ('is_active', models.BooleanField(default=True, help_text='Inactive outcomes leave the menus; activities keep them.')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'ordering': ['position', 'id'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'code'), name='activityoutcome_unique_code', violation_error_message='An outcome with this code already exists.')],
            },
        ),
        migrations.RunPython(outcomes_for_existing_tenants, migrations.RunPython.noop),
    ]
