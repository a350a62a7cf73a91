"""SLA clocks: which policy applies to a lead, and starting, restarting and stopping its clock.

A clock starts at every assignment (`sla_clock_restart`, called by `lead_assign`) from the first
matching active `SlaPolicy`, and stops at the first logged contact, at acceptance, or when the
lead is reassigned or closed (`sla_clock_stop`). What happens once a clock is overdue (breach and
the escalation ladder) is `routing.services.sla_enforcement`, which builds on this module; this
module never imports assignment, so `assign` can import it.
"""
from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leads.models import Lead, LeadStage

from ..business_hours import add_business_minutes
from ..models import SlaClock, SlaKind, SlaPolicy
from ..selectors import OPEN_STATUSES

SLA_AGENT = Actor.agent("SLA Agent")


def sla_policy_for(*, lead: Lead, policies: list[SlaPolicy] | None = None) -> SlaPolicy | None:
    """The first active policy (by position) whose sources, bands and stages lists hold the lead's
    value or are empty. An acceptance policy only applies to an SQL not yet accepted."""
    if policies is None:
        policies = list(SlaPolicy.objects.unscoped().filter(tenant_id=lead.tenant_id, is_active=True)
                        .order_by("position", "id"))
    source, band, stage = (lead.source or "").lower(), (lead.band or "").lower(), (lead.stage or "").lower()
    for policy in policies:
        if not policy.is_active:
            continue
        if policy.kind == SlaKind.ACCEPTANCE and (stage != LeadStage.SQL or lead.accepted_at is not None):
            continue
        if policy.sources and source not in {str(s).lower() for s in policy.sources}:
            continue
        if policy.bands and band not in {str(b).lower() for b in policy.bands}:
            continue
        if policy.stages and stage not in {str(s).lower() for s in policy.stages}:
            continue
        return policy
    return None


def sla_deadline(*, tenant, policy: SlaPolicy | None, start: dt.datetime, minutes: int, hours=None) -> dt.datetime:
    """`start` + minutes, counting business minutes only when the policy says so (`hours`: the
    tenant's business hours when the caller has them loaded already). Clock deadlines and the
    times of escalation steps are both computed here."""
    if policy is not None and policy.business_hours_only:
        return add_business_minutes(tenant=tenant, start=start, minutes=minutes, hours=hours)
    return start + dt.timedelta(minutes=minutes)


def _clocks_stop(*, tenant_id: int, lead_id, reason: str, now: dt.datetime, kind: str | None = None) -> list[tuple]:
    """Stop the lead's running clock (status-guarded) and resolve its open escalations, in one statement.
    Returns [(clock id, kind, breached_at, level)] of what it stopped (empty when nothing ran)."""
    kind_sql = "AND kind = %(kind)s" if kind else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH stopped AS (UPDATE routing_slaclock SET stopped_at = %(now)s, stop_reason = %(reason)s, "
            f" next_action_at = NULL WHERE tenant_id = %(tenant)s AND lead_id = %(lead)s AND stopped_at IS NULL {kind_sql}"
            " RETURNING id, kind, breached_at, level), "
            "resolved AS (UPDATE routing_escalation e SET resolved_at = %(now)s FROM stopped s "
            " WHERE e.tenant_id = %(tenant)s AND e.clock_id = s.id AND e.resolved_at IS NULL RETURNING 1) "
            "SELECT id, kind, breached_at, level FROM stopped",
            {"now": now, "reason": str(reason)[:64], "tenant": tenant_id, "lead": lead_id, "kind": str(kind or "")},
        )
        return cursor.fetchall()


def _audit_stopped(*, lead: Lead, stopped: list[tuple], reason: str, actor: Actor) -> None:
    for clock_id, kind, breached_at, level in stopped:
        audit_record(tenant=lead.tenant, actor=actor, action="sla.stopped", obj=lead,
                     metadata={"clock_id": clock_id, "kind": kind, "reason": reason,
                               "breached": breached_at is not None, "escalation_level": level})


@transaction.atomic(savepoint=False)
def sla_clock_restart(*, lead: Lead, assignment, now: dt.datetime | None = None) -> SlaClock | None:
    """Stop the running clock ("reassigned") and start the one the new assignment calls for.

    A clock starts when the assignment has an owner, the lead is open and a policy matches;
    `lead.sla_due_at` mirrors its deadline (cleared when no clock runs). A new assignment is a
    new untouched spell, so the aging flags are cleared too.
    """
    now = now or getattr(assignment, "at", None) or timezone.now()
    stopped = _clocks_stop(tenant_id=lead.tenant_id, lead_id=lead.pk, reason="reassigned", now=now)
    clock = None
    policy = None
    if assignment.owner_id is not None and lead.status in OPEN_STATUSES:
        policy = sla_policy_for(lead=lead)
    if policy is not None:
        due = sla_deadline(tenant=lead.tenant, policy=policy, start=now, minutes=policy.minutes)
        clock = SlaClock.objects.unscoped().create(
            tenant_id=lead.tenant_id, lead_id=lead.pk, assignment=assignment, policy=policy, policy_name=policy.name,
            kind=policy.kind, owner_id=assignment.owner_id, started_at=now, due_at=due, next_action_at=due,
        )
    lead.sla_due_at = clock.due_at if clock else None
    lead.aging_flagged_at = lead.aging_alerted_at = None
    Lead.objects.unscoped().filter(tenant_id=lead.tenant_id, pk=lead.pk).update(
        sla_due_at=lead.sla_due_at, aging_flagged_at=None, aging_alerted_at=None)
    _audit_stopped(lead=lead, stopped=stopped, reason="reassigned", actor=SLA_AGENT)
    if clock is not None:
        audit_record(tenant=lead.tenant, actor=SLA_AGENT, action="sla.started", obj=lead,
                     metadata={"clock_id": clock.pk, "policy": policy.name, "kind": policy.kind,
                               "owner_id": assignment.owner_id, "minutes": policy.minutes,
                               "business_hours_only": policy.business_hours_only, "due_at": clock.due_at})
    return clock


@transaction.atomic(savepoint=False)
def sla_clock_stop(
    *, lead: Lead, reason: str, now: dt.datetime | None = None, kind: str | None = None, actor: Actor | None = None,
) -> SlaClock | None:
    """Stop the lead's running clock ("first_contact", "accepted", "closed", "recycled" …).

    Idempotent: a second call finds nothing running and returns None. `kind` stops only a clock
    of that kind (a logged call stops a first-contact clock, not an AE's acceptance clock).
    """
    now = now or timezone.now()
    stopped = _clocks_stop(tenant_id=lead.tenant_id, lead_id=lead.pk, reason=reason, now=now, kind=kind)
    if not stopped:
        return None
    lead.sla_due_at = None
    Lead.objects.unscoped().filter(tenant_id=lead.tenant_id, pk=lead.pk).update(sla_due_at=None)
    _audit_stopped(lead=lead, stopped=stopped, reason=reason, actor=actor or SLA_AGENT)
    return SlaClock.objects.unscoped().get(pk=stopped[0][0])
