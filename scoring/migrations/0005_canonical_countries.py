"""Data: scoring rules that compare countries list ISO alpha-2 codes. Tenant by tenant, idempotent."""
from django.db import migrations


def forwards(apps, schema_editor):
    from scoring.country_backfill import scoring_canonicalize_all

    scoring_canonicalize_all(connection=schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("scoring", "0004_lead_class_reason_wording"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
