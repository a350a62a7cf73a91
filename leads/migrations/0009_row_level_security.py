"""Row-level security: each leads table with a tenant_id is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("leads", "0008_canonical_countries")]

    operations = [
        TenantRowLevelSecurity(
            "leads_leadform",
            "leads_account",
            "leads_lead",
            "leads_touch",
            "leads_signaltype",
            "leads_signal",
            "leads_activity",
            "leads_stagetransition",
            "leads_idempotencyrecord",
            "leads_opportunity",
            "leads_activityoutcome",
        ),
    ]
