"""Rewrite stored lead class reasons to the new wording ("shows none intent" → "shows no buying intent yet").

Re-scoring writes the new wording, but a lead whose points never change is not rewritten; this fixes the
stored text once, tenant by tenant. Idempotent: only reasons still in the old wording match.
"""
from django.db import migrations

OLD_TO_NEW = [
    (" shows none intent ", " shows no buying intent yet "),
    (" shows some intent ", " shows some interest "),
    (" shows ready intent ", " shows buying intent now "),
]


def reword(apps, schema_editor):
    Tenant = apps.get_model("tenancy", "Tenant")
    with schema_editor.connection.cursor() as cursor:
        for tenant_id in Tenant.objects.values_list("id", flat=True):
            for old, new in OLD_TO_NEW:
                cursor.execute(
                    "UPDATE leads_lead SET lead_class_reason = replace(lead_class_reason, %s, %s) "
                    "WHERE tenant_id = %s AND lead_class_reason LIKE %s",
                    [old, new, tenant_id, f"%{old}%"],
                )


class Migration(migrations.Migration):

    dependencies = [
        ("scoring", "0003_history_no_single_tenant_index"),
        ("leads", "0003_lead_scoring_model"),
        ("tenancy", "0001_initial"),
    ]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop)]
