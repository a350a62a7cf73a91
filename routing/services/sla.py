"""The SLA Agent: SLA policies and clocks, breach detection and the escalation ladder.

A clock starts at every assignment (`sla_clock_restart`, called by `lead_assign`) from the first
matching active `SlaPolicy`, and stops at the first logged contact, at acceptance, or when the
lead is reassigned or closed (`sla_clock_stop`). Beat runs `sla_enforce` every minute: due clocks
are picked set-based and locked one by one with `FOR UPDATE SKIP LOCKED`, so concurrent runs split
the work; each ladder step is written as an `Escalation` row unique per (clock, level) *before* it
acts, so a step happens once per breach however often or concurrently enforcement runs.
Aging and recycling live in `routing.services.aging` and are re-exported here.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, AgentSetting, Tenant
from leads.models import OPEN_LEAD_STATUSES, Lead, LeadStage

from ..business_hours import add_business_minutes, tenant_hours
from ..models import (
    Escalation,
    EscalationAction,
    EscalationStep,
    SlaClock,
    SlaKind,
    SlaPolicy,
    Trigger,
)
from ..notifications import lead_label, managers_for_many, notify

log = logging.getLogger(__name__)

SLA_AGENT = Actor.agent("SLA Agent")
# Leads someone is expected to work: clocks run, aging is checked, capacity counts them.
OPEN_STATUSES = OPEN_LEAD_STATUSES  # one definition, in leads.models
ENFORCE_BATCH = 100


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


def _plus(*, tenant, policy: SlaPolicy | None, start: dt.datetime, minutes: int, hours=None) -> dt.datetime:
    """`start` + minutes, counting business minutes only when the policy says so."""
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
        due = _plus(tenant=lead.tenant, policy=policy, start=now, minutes=policy.minutes)
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


# --- enforcement -----------------------------------------------------------------------------------


class _Batch:
    """What a batch of due clocks needs, loaded in a fixed number of queries."""

    def __init__(self, clocks: list[SlaClock]):
        self.tenants = Tenant.objects.in_bulk({c.tenant_id for c in clocks})
        self.policies = SlaPolicy.objects.unscoped().in_bulk({c.policy_id for c in clocks if c.policy_id})
        self.steps: dict[int, list[EscalationStep]] = defaultdict(list)
        for step in EscalationStep.objects.unscoped().filter(policy_id__in=list(self.policies)).order_by("level"):
            self.steps[step.policy_id].append(step)
        self._hours: dict[int, dict] = {}

    def hours(self, tenant) -> dict:
        if tenant.pk not in self._hours:
            self._hours[tenant.pk] = tenant_hours(tenant=tenant)
        return self._hours[tenant.pk]


def _escalation_claim(*, clock: SlaClock, step: EscalationStep, now: dt.datetime, target_id=None, note="") -> int | None:
    """Insert the (clock, level) escalation; None when it exists already (the step was taken)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO routing_escalation (tenant_id, clock_id, lead_id, level, action, owner_id, target_id, note, at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, clock_id, level) DO NOTHING RETURNING id",
            [clock.tenant_id, clock.pk, clock.lead_id, step.level, str(step.action), clock.owner_id, target_id, note, now],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _alert_managers(*, tenant, clock: SlaClock, lead: Lead, step: EscalationStep, now: dt.datetime) -> list:
    managers = managers_for_many(tenant=tenant, user_ids=[clock.owner_id]).get(clock.owner_id, []) \
        if clock.owner_id else managers_for_many(tenant=tenant, user_ids=[-1]).get(-1, [])
    owner = lead.owner
    overdue = int((now - clock.due_at).total_seconds() // 60)
    for manager in managers:
        notify(tenant=tenant, user=manager, kind="sla_breach", lead=lead, email=True, now=now,
               dedup_key=f"sla:{clock.pk}:{step.level}",
               title=f"SLA breached: {lead_label(lead)}",
               body=f"{owner or 'Nobody'} has not acted on {lead_label(lead)} ({clock.policy_name}): "
                    f"due {clock.due_at:%Y-%m-%d %H:%M %Z}, {overdue} min overdue.")
    return managers


def _reassign(*, tenant, clock: SlaClock, lead: Lead, now: dt.datetime):
    from .assign import lead_route  # the routing engine; imported late (it imports this module)

    with tenant_scope(tenant):
        return lead_route(lead=lead, actor=SLA_AGENT, trigger=Trigger.SLA_ESCALATION,
                          exclude_user_ids=[clock.owner_id] if clock.owner_id else [], now=now)


def _clock_enforce(*, clock: SlaClock, lead: Lead, batch: _Batch, now: dt.datetime, stats: Counter) -> None:
    """Breach and every due ladder step of one clock; the caller holds the lead's and the clock's locks."""
    tenant = batch.tenants[clock.tenant_id]
    if lead.status not in OPEN_STATUSES or lead.owner_id != clock.owner_id:
        reason = "closed" if lead.status not in OPEN_STATUSES else "owner_changed"
        _audit_stopped(lead=lead, stopped=_clocks_stop(tenant_id=lead.tenant_id, lead_id=lead.pk, reason=reason, now=now),
                       reason=reason, actor=SLA_AGENT)
        Lead.objects.unscoped().filter(tenant_id=lead.tenant_id, pk=lead.pk).update(sla_due_at=None)
        stats["stopped"] += 1
        return
    policy = batch.policies.get(clock.policy_id)
    if clock.breached_at is None:
        clock.breached_at = clock.due_at
        stats["breached"] += 1
        audit_record(tenant=tenant, actor=SLA_AGENT, action="sla.breached", obj=lead,
                     metadata={"clock_id": clock.pk, "policy": clock.policy_name, "owner_id": clock.owner_id,
                               "due_at": clock.due_at})
        if clock.owner_id:
            notify(tenant=tenant, user=clock.owner_id, kind="sla_breached", lead=lead, now=now,
                   dedup_key=f"sla:{clock.pk}:breach", title=f"SLA missed: {lead_label(lead)}",
                   body=f"The {clock.policy_name} deadline ({clock.due_at:%Y-%m-%d %H:%M %Z}) has passed.")
    next_action_at = None
    reassigned = False
    for step in batch.steps.get(clock.policy_id, []):
        if step.level <= clock.level:
            continue
        at = _plus(tenant=tenant, policy=policy, start=clock.due_at, minutes=step.after_minutes,
                   hours=batch.hours(tenant) if policy and policy.business_hours_only else None)
        if at > now:
            next_action_at = at
            break
        clock.level = step.level
        escalation_id = _escalation_claim(clock=clock, step=step, now=now)
        if escalation_id is None:
            continue  # taken already: never twice per breach
        target_id, note = None, ""
        if step.action == EscalationAction.ALERT_MANAGER:
            managers = _alert_managers(tenant=tenant, clock=clock, lead=lead, step=step, now=now)
            target_id = managers[0].pk if managers else None
            note = "Alerted " + (", ".join(m.get_username() for m in managers) or "nobody (no manager or admin)")
            stats["alerted"] += 1
        elif step.action == EscalationAction.REASSIGN:
            assignment = _reassign(tenant=tenant, clock=clock, lead=lead, now=now)
            target_id = assignment.owner_id
            note = (f"Reassigned to user {assignment.owner_id}" if assignment.owner_id
                    else f"Moved to Unassigned: {assignment.reason}")
            stats["reassigned"] += 1
            reassigned = True
        Escalation.objects.unscoped().filter(pk=escalation_id).update(target_id=target_id, note=note)
        audit_record(tenant=tenant, actor=SLA_AGENT, action="sla.escalated", obj=lead,
                     metadata={"clock_id": clock.pk, "level": step.level, "action": step.action,
                               "owner_id": clock.owner_id, "target_id": target_id, "note": note})
        stats["escalations"] += 1
        if reassigned:
            break  # the new owner has a new clock; this one was stopped by the reassignment
    fields = {"breached_at": clock.breached_at, "level": clock.level}
    if not reassigned:
        fields["next_action_at"] = next_action_at
    SlaClock.objects.unscoped().filter(pk=clock.pk).update(**fields)


def sla_enforce(*, now: dt.datetime | None = None, tenant=None, batch_size: int = ENFORCE_BATCH) -> dict:
    """Beat, every minute: breach every due clock and take each due ladder step, once.

    Due clocks are picked set-based in batches; each is then locked and re-checked on its own
    (`FOR UPDATE SKIP LOCKED`, status-guarded: still running, still due) and processed in its own
    transaction. One clock at a time keeps the lock order of routing (lead, then round-robin slots)
    free of cycles when a step reassigns, lets a concurrent run take the other clocks, and a
    failure (logged) never blocks the others. Tenants whose SLA Agent is off are left alone.
    """
    now = now or timezone.now()
    stats: Counter = Counter()
    seen: set[int] = set()
    agent_off = AgentSetting.objects.unscoped().filter(tenant_id=OuterRef("tenant_id"), agent=Agent.SLA, enabled=False)
    due = (SlaClock.objects.unscoped().filter(stopped_at__isnull=True, next_action_at__lte=now)
           .exclude(Exists(agent_off)))
    if tenant is not None:
        due = due.filter(tenant_id=tenant.pk)
    while True:
        candidates = list(due.exclude(pk__in=seen).order_by("next_action_at", "id")[:batch_size])
        if not candidates:
            break
        batch = _Batch(candidates)
        for candidate in candidates:
            seen.add(candidate.pk)
            try:
                with transaction.atomic():
                    # Lead row first, then its clock: the order every writer of a lead uses. A lead
                    # locked by someone else (another run, a rep logging a call) is left to the next tick.
                    lead = (Lead.objects.unscoped().select_for_update(of=("self",), skip_locked=True)
                            .select_related("owner")
                            .filter(tenant_id=candidate.tenant_id, pk=candidate.lead_id).first())
                    if lead is None:
                        continue
                    # Only the holder of the lead asks for the clock: otherwise two runs could each
                    # hold one of the pair and both skip it.
                    clock = due.select_for_update(skip_locked=True).filter(pk=candidate.pk).first()
                    if clock is None:
                        continue  # stopped or advanced meanwhile
                    stats["clocks"] += 1
                    _clock_enforce(clock=clock, lead=lead, batch=batch, now=now, stats=stats)
            except Exception:
                log.exception("SLA clock %s: enforcement failed; retried next tick", candidate.pk)
                stats["errors"] += 1
        if len(candidates) < batch_size:
            break
    return {key: stats[key] for key in ("clocks", "breached", "alerted", "reassigned", "escalations",
                                        "stopped", "errors")}


def __getattr__(name: str):
    """`leads_aging_check` and `lead_recycle` are part of this module's API but live in `.aging`
    (which imports this module), so they are looked up lazily."""
    if name in {"leads_aging_check", "lead_recycle"}:
        from . import aging

        return getattr(aging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
