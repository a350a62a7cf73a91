"""SLA clocks: which policy applies to a lead, and starting, restarting, tightening and stopping its clock.

A clock starts at every assignment (`sla_clock_restart`, called by `lead_assign`) from the first
matching active `SlaPolicy`, and stops at the first logged contact, at acceptance, or when the
lead is reassigned or closed (`sla_clock_stop`); when the lead's band changes, a running
first-contact clock moves to a tighter policy that now matches (`sla_clock_tighten`). What happens
once a clock is overdue (breach and the escalation ladder) is `routing.services.sla_enforcement`,
which builds on this module; this module never imports assignment, so `assign` can import it.
"""
from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_event_build, audit_record
from leadmgmt.db.bulk import instance_builder, rows_insert
from leads.locks import lead_lock_refresh
from leads.models import OPEN_STATUSES, Lead, LeadStage

from ..business_hours import add_business_minutes, tenant_hours
from ..models import SlaClock, SlaKind, SlaPolicy

SLA_AGENT = Actor.agent("SLA Agent")


def sla_policy_for(*, lead: Lead, policies: list[SlaPolicy] | None = None) -> SlaPolicy | None:
    """The first active policy (by position) whose sources, bands and stages lists hold the lead's
    value or are empty. An acceptance policy only applies to an SQL not yet accepted."""
    if policies is None:
        policies = list(SlaPolicy.objects.for_tenant(lead.tenant_id).filter(is_active=True)
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
        clock = SlaClock.objects.create(
            tenant_id=lead.tenant_id, lead_id=lead.pk, assignment=assignment, policy=policy, policy_name=policy.name,
            kind=policy.kind, owner_id=assignment.owner_id, started_at=now, due_at=due, next_action_at=due,
        )
    lead.sla_due_at = clock.due_at if clock else None
    lead.aging_flagged_at = lead.aging_alerted_at = None
    Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk).update(
        sla_due_at=lead.sla_due_at, aging_flagged_at=None, aging_alerted_at=None)
    _audit_stopped(lead=lead, stopped=stopped, reason="reassigned", actor=SLA_AGENT)
    if clock is not None:
        audit_record(tenant=lead.tenant, actor=SLA_AGENT, action="sla.started", obj=lead,
                     metadata={"clock_id": clock.pk, "policy": policy.name, "kind": policy.kind,
                               "owner_id": assignment.owner_id, "minutes": policy.minutes,
                               "business_hours_only": policy.business_hours_only, "due_at": clock.due_at})
    return clock


def _running_clocks_stop(*, tenant, lead_ids: list, now: dt.datetime) -> list[tuple]:
    """Stop these leads' running clocks ("reassigned") and resolve their open escalations, in one statement.
    Returns [(clock id, lead id, kind, breached_at, level)] of what it stopped."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH stopped AS (UPDATE routing_slaclock SET stopped_at = %(now)s, stop_reason = 'reassigned', "
            " next_action_at = NULL WHERE tenant_id = %(tenant)s AND lead_id = ANY(%(leads)s::uuid[]) "
            " AND stopped_at IS NULL RETURNING id, lead_id, kind, breached_at, level), "
            "resolved AS (UPDATE routing_escalation e SET resolved_at = %(now)s FROM stopped s "
            " WHERE e.tenant_id = %(tenant)s AND e.clock_id = s.id AND e.resolved_at IS NULL RETURNING 1) "
            "SELECT id, lead_id, kind, breached_at, level FROM stopped ORDER BY lead_id, id",
            {"now": now, "tenant": tenant.pk, "leads": [str(pk) for pk in lead_ids]},
        )
        return cursor.fetchall()


def sla_clocks_restart_many(*, tenant, assigned: list[tuple[Lead, object]], now: dt.datetime,
                            never_assigned: bool = False) -> list:
    """`sla_clock_restart` for a batch of leads just assigned (the capture pipeline), set-based: their running
    clocks stopped in one statement, the new clocks inserted in one. Sets each lead's `sla_due_at` and clears
    its aging flags in memory only: the caller writes the leads (one UPDATE for the batch). Returns the audit
    events to record (sla.stopped, sla.started), unsaved. `never_assigned`: the caller knows none of these leads
    had an assignment before this one, so none has a clock to stop (a clock starts only with an assignment), and
    the stop is not run (under statistics taken when the tenant had a few dozen clocks it read every running
    clock of the tenant: 87,000 rows, 32 ms for an import's batch of 300 new leads)."""
    if not assigned:
        return []
    by_id = {lead.pk: lead for lead, _assignment in assigned}
    stopped = [] if never_assigned else _running_clocks_stop(tenant=tenant, lead_ids=list(by_id), now=now)
    events = [audit_event_build(tenant=tenant, actor=SLA_AGENT, action="sla.stopped", obj=by_id[lead_id],
                                metadata={"clock_id": clock_id, "kind": kind, "reason": "reassigned",
                                          "breached": breached_at is not None, "escalation_level": level})
              for clock_id, lead_id, kind, breached_at, level in stopped]
    policies = list(SlaPolicy.objects.for_tenant(tenant).filter(is_active=True).order_by("position", "id"))
    hours = tenant_hours(tenant=tenant) if any(p.business_hours_only for p in policies) else {}
    clocks = []
    new_clock = instance_builder(SlaClock)  # SlaClock(**values), cheaper by the hundred
    for lead, assignment in assigned:
        lead.sla_due_at = lead.aging_flagged_at = lead.aging_alerted_at = None
        policy = None
        if assignment.owner_id is not None and lead.status in OPEN_STATUSES:
            policy = sla_policy_for(lead=lead, policies=policies)
        if policy is None:
            continue
        due = sla_deadline(tenant=tenant, policy=policy, start=now, minutes=policy.minutes, hours=hours)
        lead.sla_due_at = due
        clocks.append(new_clock(
            tenant_id=tenant.pk, lead_id=lead.pk, assignment=assignment, policy=policy, policy_name=policy.name,
            kind=policy.kind, owner_id=assignment.owner_id, started_at=now, due_at=due, next_action_at=due))
    rows_insert(clocks)
    for clock in clocks:
        policy = clock.policy
        events.append(audit_event_build(
            tenant=tenant, actor=SLA_AGENT, action="sla.started", obj=by_id[clock.lead_id],
            metadata={"clock_id": clock.pk, "policy": policy.name, "kind": policy.kind,
                      "owner_id": clock.owner_id, "minutes": policy.minutes,
                      "business_hours_only": policy.business_hours_only, "due_at": clock.due_at}))
    return events


def sla_clocks_stop_many(*, tenant, leads: list[Lead], reasons: dict, now: dt.datetime, actor: Actor) -> list:
    """`sla_clock_stop` for a batch of leads (the outcome sync), set-based: their running clocks stopped and open
    escalations resolved in one statement, `reasons[lead.pk]` the stop reason of each. Clears `sla_due_at` in
    memory only (the caller writes the leads). Returns the `sla.stopped` audit events to record, unsaved."""
    if not leads:
        return []
    by_id = {lead.pk: lead for lead in leads}
    ids = list(by_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH input AS (SELECT * FROM unnest(%(leads)s::uuid[], %(reasons)s::text[]) AS i(lead_id, reason)), "
            "stopped AS (UPDATE routing_slaclock c SET stopped_at = %(now)s, stop_reason = input.reason, "
            " next_action_at = NULL FROM input WHERE c.tenant_id = %(tenant)s AND c.lead_id = input.lead_id "
            " AND c.stopped_at IS NULL RETURNING c.id, c.lead_id, c.kind, c.breached_at, c.level, c.stop_reason), "
            "resolved AS (UPDATE routing_escalation e SET resolved_at = %(now)s FROM stopped s "
            " WHERE e.tenant_id = %(tenant)s AND e.clock_id = s.id AND e.resolved_at IS NULL RETURNING 1) "
            "SELECT id, lead_id, kind, breached_at, level, stop_reason FROM stopped ORDER BY lead_id, id",
            {"now": now, "tenant": tenant.pk, "leads": [str(pk) for pk in ids],
             "reasons": [str(reasons[pk])[:64] for pk in ids]},
        )
        stopped = cursor.fetchall()
    for lead in leads:
        lead.sla_due_at = None
    return [audit_event_build(tenant=tenant, actor=actor, action="sla.stopped", obj=by_id[lead_id],
                              metadata={"clock_id": clock_id, "kind": kind, "reason": reason,
                                        "breached": breached_at is not None, "escalation_level": level})
            for clock_id, lead_id, kind, breached_at, level, reason in stopped]


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
    Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk).update(sla_due_at=None)
    _audit_stopped(lead=lead, stopped=stopped, reason=reason, actor=actor or SLA_AGENT)
    return SlaClock.objects.for_tenant(lead.tenant_id).get(pk=stopped[0][0])


@transaction.atomic
def sla_clock_tighten(*, lead: Lead, now: dt.datetime | None = None) -> SlaClock | None:
    """After a band change: put the lead's running first-contact clock on the policy that matches now
    when that one is tighter (fewer minutes) than the policy the clock came from.

    The clock keeps its start, owner and breach state (one clock per assignment, so the dashboards'
    met/breached counts stay right) and moves to the new policy, due at min(old due, now + the new
    window): the hot clock from that moment, never later than before. A cooler band never loosens
    a clock. Only an owned, open lead whose running clock is its owner's first-contact clock is
    touched; re-running it finds the clock on the matching policy already and changes nothing.
    Returns the re-timed clock, or None.
    """
    now = now or timezone.now()
    lead = lead_lock_refresh(lead=lead)
    if lead.owner_id is None or lead.status not in OPEN_STATUSES:
        return None
    clock = (SlaClock.objects.for_tenant(lead.tenant_id).select_for_update(of=("self",)).select_related("policy")
             .filter(lead_id=lead.pk, stopped_at__isnull=True).first())
    if clock is None or clock.kind != SlaKind.FIRST_CONTACT or clock.owner_id != lead.owner_id:
        return None
    policy = sla_policy_for(lead=lead)
    if policy is None or policy.kind != SlaKind.FIRST_CONTACT or policy.pk == clock.policy_id:
        return None
    old_minutes = clock.policy.minutes if clock.policy is not None else \
        int((clock.due_at - clock.started_at).total_seconds() // 60)
    if policy.minutes >= old_minutes:
        return None  # the matching policy is not tighter: the running clock stands
    old_policy, old_due = clock.policy_name, clock.due_at
    due = min(old_due, sla_deadline(tenant=lead.tenant, policy=policy, start=now, minutes=policy.minutes))
    clock.policy, clock.policy_name, clock.due_at = policy, policy.name, due
    # A clock not breached yet is next looked at on its (new) deadline; a breached one at once, so the
    # SLA Agent takes the new policy's remaining ladder steps (those already taken are not repeated).
    clock.next_action_at = due if clock.breached_at is None else now
    clock.save(update_fields=["policy", "policy_name", "due_at", "next_action_at"])
    lead.sla_due_at = due
    Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk).update(sla_due_at=due)
    audit_record(tenant=lead.tenant, actor=SLA_AGENT, action="sla.tightened", obj=lead,
                 metadata={"clock_id": clock.pk, "from_policy": old_policy, "policy": policy.name,
                           "band": lead.band, "score": lead.score, "minutes": policy.minutes,
                           "previous_due_at": old_due, "due_at": due, "owner_id": clock.owner_id})
    return clock
