"""Row-level security: each webhooks table is held to the tenant of the transaction (leadmgmt/db/rls.py)."""
from django.db import migrations

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [
        TenantRowLevelSecurity("webhooks_webhookendpoint", "webhooks_webhookevent", "webhooks_webhookdelivery"),
    ]
