"""The taxonomy of lost deals: its defaults, seeding them for a tenant, reading the active reasons.

Every tenant starts with the defaults below (the `tenant_provisioned` receiver; migration
`leads.0016_outcomes` for tenants that existed before) and edits them in the admin (config editors). A reason in
use is switched off, never deleted (opportunities and outcomes keep it: the foreign keys protect it).
"""
from __future__ import annotations

from .models import LostReason

DEFAULT_LOST_REASONS: tuple[tuple[str, str], ...] = (
    ("price", "Price / budget"),
    ("competitor", "Chose a competitor"),
    ("no_decision", "No decision / stalled"),
    ("timing", "Bad timing"),
    ("missing_feature", "Missing feature or fit"),
    ("no_response", "Went silent"),
    ("other", "Other"),
)


def lost_reasons_seed(*, tenant_id: int, model=LostReason) -> list[str]:
    """Create the default reasons the tenant lacks (by code); returns the codes created. Idempotent, and the
    tenant's own edits are kept. `model` is the historical model in a migration."""
    existing = set(model._base_manager.filter(tenant_id=tenant_id).values_list("code", flat=True))
    missing = [(position, code, label) for position, (code, label) in enumerate(DEFAULT_LOST_REASONS, start=1)
               if code not in existing]
    model._base_manager.bulk_create(
        [model(tenant_id=tenant_id, code=code, label=label, position=position * 10) for position, code, label in missing],
        ignore_conflicts=True)
    return [code for _, code, _ in missing]


def lost_reasons_active(*, tenant_id: int) -> list[LostReason]:
    """The reasons people pick from, in the tenant's order."""
    return list(LostReason.objects.for_tenant(tenant_id).filter(is_active=True).order_by("position", "id"))
