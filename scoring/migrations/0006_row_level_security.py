"""Row-level security: each scoring table with a tenant_id is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("scoring", "0005_canonical_countries")]

    operations = [
        TenantRowLevelSecurity(
            "scoring_scoringmodel",
            "scoring_scoringrule",
            "scoring_scoreband",
            "scoring_scorechange",
            "scoring_scoreevent",
        ),
    ]
