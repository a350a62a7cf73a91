"""Dry run: which rule would fire for a lead (real or hypothetical), who would get it and why, writing nothing."""
from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from leadmgmt.tenancy.models import Tenant
from leads.models import Lead

from ..conditions import FIELDS
from ..strategies import route_decide

VALUE_FIELDS = set(FIELDS) | {"attributes", "account_id"}


def route_dry_run(*, tenant: Tenant, lead: Lead | None = None, values: dict | None = None,
                  now: datetime | None = None) -> dict:
    """Walk the tenant's rules for `lead` or for hypothetical `values` (a dict of lead fields) and say
    which rule would fire, with which strategy, who would get the lead and why each rule before it did
    not match or could not place it. Nothing is locked or written: the round-robin pick shown is the
    rep who would be next right now."""
    if (lead is None) == (values is None):
        raise ValidationError({"lead": ["Give either a lead or hypothetical field values."]})
    if lead is not None and lead.tenant_id != tenant.pk:
        raise ValidationError({"lead": ["No such lead."]})
    if values is not None:
        if not isinstance(values, dict):
            raise ValidationError({"values": ["Values must be an object of lead fields."]})
        unknown = sorted(k for k in values if k not in VALUE_FIELDS and not k.startswith("attributes."))
        if unknown:
            raise ValidationError({"values": [f"Unknown lead field(s): {', '.join(unknown)}."]})
    decision = route_decide(tenant=tenant, source=lead if lead is not None else values, at=now or timezone.now(),
                            commit=False)
    owner = decision.owner
    return {
        "rule": ({"id": decision.rule.pk, "name": decision.rule.name, "position": decision.rule.position}
                 if decision.rule is not None else None),
        "strategy": decision.strategy,
        "owner": {"id": owner.pk, "email": owner.email} if owner is not None else None,
        "team": {"id": decision.team.pk, "name": decision.team.name} if decision.team is not None else None,
        "reason": decision.reason,
        "rules": [{"position": r["position"], "name": r["name"], "matched": r["matched"], "placed": r["placed"],
                   "why": r["why"]} for r in decision.trace],
    }
