"""Row-level security: each audit table with a tenant_id is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        TenantRowLevelSecurity(
            "audit_auditevent",
        ),
    ]
