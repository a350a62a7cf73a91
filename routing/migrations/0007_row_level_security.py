"""Row-level security: each routing table with a tenant_id is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("routing", "0006_territory_countries_help")]

    operations = [
        TenantRowLevelSecurity(
            "routing_routingrule",
            "routing_routingrulemember",
            "routing_territory",
            "routing_roundrobinslot",
            "routing_assignment",
            "routing_slapolicy",
            "routing_escalationstep",
            "routing_businesshours",
            "routing_slaclock",
            "routing_escalation",
            "routing_routingsettings",
            "routing_notification",
            "routing_rejectionreason",
        ),
    ]
