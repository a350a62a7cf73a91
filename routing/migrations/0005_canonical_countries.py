"""Data: territories' countries as ISO alpha-2 codes and regions as NA/LATAM/EMEA/APAC; rules' country
conditions as codes. Tenant by tenant, idempotent."""
from django.db import migrations


def forwards(apps, schema_editor):
    from routing.country_backfill import routing_canonicalize_all

    routing_canonicalize_all(connection=schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0004_notification_unread_index"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
