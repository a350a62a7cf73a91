"""Data: every lead's country as its ISO 3166-1 alpha-2 code and its custom region as NA/LATAM/EMEA/APAC."""
from django.db import migrations


def forwards(apps, schema_editor):
    from leads.country_backfill import leads_canonicalize_all

    leads_canonicalize_all(connection=schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("leads", "0007_activity_outcomes"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
