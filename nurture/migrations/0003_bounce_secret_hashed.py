"""Store only the SHA-256 of each tenant's bounce secret; existing secrets keep working (hashed in place)."""

import hashlib
import re

from django.db import migrations, models

import nurture.models

HASHED = re.compile(r"[0-9a-f]{64}")


def hash_existing(apps, schema_editor):
    """Idempotent: rows already holding a hash (64 hex digits) are left alone; tenant by tenant."""
    NurtureSettings = apps.get_model("nurture", "NurtureSettings")
    for row in NurtureSettings._base_manager.only("pk", "tenant_id", "bounce_secret").order_by("tenant_id").iterator():
        if row.bounce_secret and not HASHED.fullmatch(row.bounce_secret):
            digest = hashlib.sha256(row.bounce_secret.encode("utf-8", "surrogatepass")).hexdigest()
            NurtureSettings._base_manager.filter(pk=row.pk, tenant_id=row.tenant_id).update(bounce_secret=digest)


class Migration(migrations.Migration):

    dependencies = [
        ("nurture", "0002_default_sequences"),
    ]

    operations = [
        migrations.AlterField(
            model_name="nurturesettings",
            name="bounce_secret",
            field=models.CharField(default=nurture.models._bounce_secret, help_text="SHA-256 of the secret your email provider sends with bounce callbacks.", max_length=64),
        ),
        migrations.RunPython(hash_existing, migrations.RunPython.noop),
    ]
