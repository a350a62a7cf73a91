"""Give every existing tenant the nurture defaults a new tenant gets from tenant_create(): settings
(postal address blank, so nothing is sent until the tenant fills it in), the `email_reply` and
`meeting_booked` signal types and seed 002's five sequences. Idempotent; the reverse keeps the data."""

from django.db import migrations


def nurture_defaults_for_existing_tenants(apps, schema_editor):
    from nurture.defaults import defaults_write

    Tenant = apps.get_model("tenancy", "Tenant")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    models = {
        "settings_model": apps.get_model("nurture", "NurtureSettings"),
        "sequence_model": apps.get_model("nurture", "Sequence"),
        "step_model": apps.get_model("nurture", "Step"),
        "signal_type_model": apps.get_model("leads", "SignalType"),
    }
    for tenant in Tenant._base_manager.order_by("pk"):
        created = defaults_write(tenant=tenant, **models)
        if any(created.values()):
            AuditEvent._base_manager.create(
                tenant_id=tenant.pk, actor_kind="system", actor_name="Migration nurture.0002",
                action="nurture.defaults_created", object_type="tenancy.tenant", object_id=str(tenant.pk),
                changes={}, metadata={"created": created})


class Migration(migrations.Migration):

    dependencies = [
        ("nurture", "0001_initial"),
        ("leads", "0006_lead_hot_updates"),
        ("audit", "0001_initial"),
        ("tenancy", "0003_routing_fields"),
    ]

    operations = [
        migrations.RunPython(nurture_defaults_for_existing_tenants, migrations.RunPython.noop),
    ]
