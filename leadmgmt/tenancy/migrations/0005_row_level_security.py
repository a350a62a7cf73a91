"""Row-level security: each tenancy table with a tenant_id is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0004_membership_active_invitation")]

    operations = [
        TenantRowLevelSecurity(
            "tenancy_team",
            "tenancy_membership",
            "tenancy_invitation",
            "tenancy_apikey",
            "tenancy_agentsetting",
        ),
    ]
