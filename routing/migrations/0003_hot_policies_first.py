"""Hotter is never slower in existing tenants' seed SLA policies (issue 12): hot paid leads join the
5-minute web policy, and hot leads from other sources get 1 hour (before trade-show and warm leads)
instead of the 4-hour catch-all while warm leads get 1 hour.

Only the seed policies a tenant has not edited are touched: each is compared field by field with the
values `routing.defaults` created before this fix (frozen below, so later changes to the defaults do
not change what this migration does). Idempotent and tenant by tenant: a second run finds the old web
policy renamed and the new policy present, and changes nothing. The reverse keeps the data."""

from django.db import migrations

WEB_SOURCES = ["web_form", "website", "chat", "demo_request", "contact_form", "landing_page"]
PAID_SOURCES = ["paid_search", "paid_social", "ads", "ppc", "google_ads", "linkedin_ads", "facebook_ads"]
HOT_BANDS = ["mql", "sal", "sql"]
FIELDS = ("position", "name", "kind", "sources", "bands", "stages", "minutes", "is_active", "business_hours_only")

OLD_HOT_WEB = dict(position=20, name="Hot / MQL web leads: first contact in 5 minutes", kind="first_contact",
                   sources=WEB_SOURCES, bands=HOT_BANDS, stages=[], minutes=5, is_active=True,
                   business_hours_only=False)
NEW_HOT_WEB = {"name": "Hot / MQL web and paid leads: first contact in 5 minutes", "sources": WEB_SOURCES + PAID_SOURCES}
WARM = dict(position=40, name="Warm leads: first contact in 1 hour", kind="first_contact", sources=[],
            bands=["warm"], stages=[], minutes=60, is_active=True, business_hours_only=False)
CATCH_ALL = dict(position=100, name="Every other lead: first contact in 4 hours", kind="first_contact", sources=[],
                 bands=[], stages=[], minutes=240, is_active=True, business_hours_only=False)
HOT_OTHER = dict(position=25, name="Hot / MQL leads from other sources: first contact in 1 hour",
                 kind="first_contact", sources=[], bands=HOT_BANDS, stages=[], minutes=60, is_active=True,
                 business_hours_only=False)
HOT_OTHER_LADDER = [(1, "alert_manager", 0), (2, "reassign", 180)]


def _unedited(policy, seed: dict) -> bool:
    return all(getattr(policy, field) == seed[field] for field in FIELDS)


def _seed_policy(policies, seed: dict):
    """The tenant's policy holding exactly the seed's values, or None (deleted or edited)."""
    return next((p for p in policies if _unedited(p, seed)), None)


def sla_policies_hot_first(apps, schema_editor):
    Tenant = apps.get_model("tenancy", "Tenant")
    SlaPolicy = apps.get_model("routing", "SlaPolicy")
    EscalationStep = apps.get_model("routing", "EscalationStep")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    for tenant_id in Tenant._base_manager.order_by("pk").values_list("pk", flat=True):
        policies = list(SlaPolicy._base_manager.filter(tenant_id=tenant_id).order_by("position", "id"))
        changed = {}
        hot_web = _seed_policy(policies, OLD_HOT_WEB)
        if hot_web is not None:
            SlaPolicy._base_manager.filter(pk=hot_web.pk).update(**NEW_HOT_WEB)
            changed["paid_sources_added_to"] = NEW_HOT_WEB["name"]
        # The 1-hour hot policy goes in only where the old pair is still as seeded (warm 1 h, the rest
        # 4 h: hot leads of other sources slower than warm ones) and nothing custom sits between the
        # 5-minute web policy and the trade-show one.
        between = [p for p in policies if 20 < p.position < 30]
        if (_seed_policy(policies, WARM) is not None and _seed_policy(policies, CATCH_ALL) is not None
                and not between and not any(p.name == HOT_OTHER["name"] for p in policies)):
            added = SlaPolicy._base_manager.create(tenant_id=tenant_id, **HOT_OTHER)
            EscalationStep._base_manager.bulk_create([
                EscalationStep(tenant_id=tenant_id, policy=added, level=level, action=action, after_minutes=after)
                for level, action, after in HOT_OTHER_LADDER
            ])
            changed["added"] = HOT_OTHER["name"]
        if changed:
            AuditEvent._base_manager.create(
                tenant_id=tenant_id, actor_kind="system", actor_name="Migration routing.0003",
                action="routing.sla_policies_hot_first", object_type="tenancy.tenant", object_id=str(tenant_id),
                changes={}, metadata=changed)


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0002_alter_assignment_trigger"),
        ("tenancy", "0003_routing_fields"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(sla_policies_hot_first, migrations.RunPython.noop),
    ]
