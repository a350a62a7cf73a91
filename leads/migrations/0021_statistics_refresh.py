"""`leads_statistics_refresh()`: ANALYZE of the tables a bulk load fills (leads, accounts, touches), callable by
the app role. Only the tables' owner may ANALYZE them, and the app role owns nothing (leadmgmt/db/roles.py): the
function runs as its owner (SECURITY DEFINER, with a fixed search_path) and does nothing else. It reads no row
for its caller and returns nothing."""
from django.db import migrations

CREATE = """
CREATE FUNCTION leads_statistics_refresh() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE leads_lead;
    ANALYZE leads_account;
    ANALYZE leads_touch;
END
$$
"""


class Migration(migrations.Migration):
    dependencies = [("leads", "0020_stagetransition_tenant_to")]

    operations = [migrations.RunSQL(CREATE, "DROP FUNCTION IF EXISTS leads_statistics_refresh()")]
