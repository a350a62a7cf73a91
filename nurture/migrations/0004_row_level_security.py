"""Row-level security: each nurture table with a tenant_id is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("nurture", "0003_bounce_secret_hashed")]

    operations = [
        TenantRowLevelSecurity(
            "nurture_nurturesettings",
            "nurture_sequence",
            "nurture_step",
            "nurture_enrollment",
            "nurture_message",
            "nurture_suppression",
        ),
    ]
