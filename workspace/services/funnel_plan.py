"""The tenant's funnel plan written (issue 16 point 8): from the plan page's form or `PUT /api/v1/funnel-plan/`.
One plan per tenant: saving replaces its values, audited with what changed; the same values again change nothing."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from ..models import FunnelPlan

PLAN_FIELDS = ("revenue_target", "target_period", "currency", "average_contract_value", "lead_to_mql", "mql_to_sal",
               "sal_to_opportunity", "opportunity_to_won", "use_measured_rates", "measured_months")


def _plain(value):
    return value if isinstance(value, (bool, int, str)) or value is None else str(value)


@transaction.atomic
def funnel_plan_save(*, tenant, data: dict, actor: Actor) -> tuple[FunnelPlan, bool]:
    """Create or replace the tenant's plan with `data` (validated: every field of PLAN_FIELDS; missing ones take the
    model's defaults). Returns the plan and whether anything changed."""
    values = {name: data[name] if name in data else FunnelPlan._meta.get_field(name).default for name in PLAN_FIELDS}
    plan = FunnelPlan.objects.for_tenant(tenant).select_for_update().first()
    created = plan is None
    if created:
        plan = FunnelPlan(tenant=tenant)
    changes = {name: [None if created else _plain(getattr(plan, name)), _plain(value)]
               for name, value in values.items() if created or getattr(plan, name) != value}
    if not changes:
        return plan, False
    for name, value in values.items():
        setattr(plan, name, value)
    plan.updated_at = timezone.now()
    if created:
        try:
            with transaction.atomic():  # a savepoint: another request may have created the plan meanwhile
                plan.save()
        except IntegrityError:
            if not FunnelPlan.objects.for_tenant(tenant).exists():
                raise  # a check constraint, not the race
            return funnel_plan_save(tenant=tenant, data=data, actor=actor)  # now there is one to update
    else:
        plan.save(update_fields=[*changes, "updated_at"])
    plan.refresh_from_db()
    audit_record(tenant=tenant, actor=actor, action="funnel_plan.created" if created else "funnel_plan.updated",
                 obj=plan, changes=changes)
    return plan, True
