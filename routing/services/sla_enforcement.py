"""SLA enforcement: breach detection and the escalation ladder of overdue clocks (the SLA Agent's beat).

Beat runs `sla_enforce` every minute: due clocks are picked set-based and locked one by one with
`FOR UPDATE SKIP LOCKED`, so concurrent runs split the work; each ladder step is written as an
`Escalation` row unique per (clock, level) *before* it acts, so a step happens once per breach
however often or concurrently enforcement runs. A reassigning step routes the lead again through
`routing.services.assign`, which restarts the clock (`routing.services.sla_clocks`).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Agent, AgentSetting, Tenant
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import webhook_emit, webhook_subscribed
from leads.locks import lead_lock
from leads.models import OPEN_STATUSES, Lead
from leads.webhooks import lead_webhook_data

from ..business_hours import tenant_hours
from ..models import Escalation, EscalationAction, EscalationStep, SlaClock, SlaPolicy, Trigger
from ..notifications import lead_label, managers_for_many, notify
from .assign import lead_route
from .sla_clocks import SLA_AGENT, sla_clock_stop, sla_deadline

log = logging.getLogger(__name__)

ENFORCE_BATCH = 100


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
    with tenant_scope(tenant):
        return lead_route(lead=lead, actor=SLA_AGENT, trigger=Trigger.SLA_ESCALATION,
                          exclude_user_ids=[clock.owner_id] if clock.owner_id else [], now=now)


def _clock_enforce(*, clock: SlaClock, lead: Lead, batch: _Batch, now: dt.datetime, stats: Counter) -> None:
    """Breach and every due ladder step of one clock; the caller holds the lead's and the clock's locks."""
    tenant = batch.tenants[clock.tenant_id]
    if lead.status not in OPEN_STATUSES or lead.owner_id != clock.owner_id:
        reason = "closed" if lead.status not in OPEN_STATUSES else "owner_changed"
        sla_clock_stop(lead=lead, reason=reason, now=now, actor=SLA_AGENT)
        stats["stopped"] += 1
        return
    policy = batch.policies.get(clock.policy_id)
    if clock.breached_at is None:
        clock.breached_at = clock.due_at
        stats["breached"] += 1
        audit_record(tenant=tenant, actor=SLA_AGENT, action="sla.breached", obj=lead,
                     metadata={"clock_id": clock.pk, "policy": clock.policy_name, "owner_id": clock.owner_id,
                               "due_at": clock.due_at})
        if webhook_subscribed(tenant=tenant, event_type=WebhookEventType.SLA_BREACHED):
            webhook_emit(tenant=tenant, event_type=WebhookEventType.SLA_BREACHED, lead_id=lead.pk, now=now,
                         key=f"sla-clock-{clock.pk}", data={
                             "lead": lead_webhook_data(lead), "sla": {
                                 "clock_id": clock.pk, "kind": clock.kind, "policy": clock.policy_name,
                                 "owner_id": clock.owner_id, "started_at": clock.started_at.isoformat(),
                                 "due_at": clock.due_at.isoformat()}})
        if clock.owner_id:
            notify(tenant=tenant, user=clock.owner_id, kind="sla_breached", lead=lead, now=now,
                   dedup_key=f"sla:{clock.pk}:breach", title=f"SLA missed: {lead_label(lead)}",
                   body=f"The {clock.policy_name} deadline ({clock.due_at:%Y-%m-%d %H:%M %Z}) has passed.")
    next_action_at = None
    reassigned = False
    for step in batch.steps.get(clock.policy_id, []):
        if step.level <= clock.level:
            continue
        at = sla_deadline(tenant=tenant, policy=policy, start=clock.due_at, minutes=step.after_minutes,
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
        Escalation.objects.for_tenant(tenant).filter(pk=escalation_id).update(target_id=target_id, note=note)
        audit_record(tenant=tenant, actor=SLA_AGENT, action="sla.escalated", obj=lead,
                     metadata={"clock_id": clock.pk, "level": step.level, "action": step.action,
                               "owner_id": clock.owner_id, "target_id": target_id, "note": note})
        stats["escalations"] += 1
        if reassigned:
            break  # the new owner has a new clock; this one was stopped by the reassignment
    fields = {"breached_at": clock.breached_at, "level": clock.level}
    if not reassigned:
        fields["next_action_at"] = next_action_at
    SlaClock.objects.for_tenant(clock.tenant_id).filter(pk=clock.pk).update(**fields)


def sla_enforce(*, now: dt.datetime | None = None, tenant=None, batch_size: int = ENFORCE_BATCH) -> dict:
    """Beat, every minute: breach every due clock and take each due ladder step, once.

    Due clocks are picked set-based in batches; each is then locked and re-checked on its own
    (`FOR UPDATE SKIP LOCKED`, status-guarded: still running, still due) and processed in its own
    transaction. One clock at a time keeps the lock order (leads.locks: the lead, then its clock and
    round-robin slots) free of cycles when a step reassigns, lets a concurrent run take the other clocks, and a
    failure (logged) never blocks the others. Tenants whose SLA Agent is off are left alone.
    """
    now = now or timezone.now()
    stats: Counter = Counter()
    seen: set[int] = set()
    agent_off = AgentSetting.objects.for_tenant(OuterRef("tenant_id")).filter(agent=Agent.SLA, enabled=False)
    clocks = SlaClock.objects.unscoped() if tenant is None else SlaClock.objects.for_tenant(tenant)
    due = clocks.filter(stopped_at__isnull=True, next_action_at__lte=now).exclude(Exists(agent_off))
    while True:
        # Due clocks of every tenant (or of the one given) are found together; each is worked in its tenant.
        with cross_tenant("sweep") if tenant is None else tenant_scope(tenant):
            candidates = list(due.exclude(pk__in=seen).order_by("next_action_at", "id")[:batch_size])
            if not candidates:
                break
            batch = _Batch(candidates)
        for candidate in candidates:
            seen.add(candidate.pk)
            try:
                with tenant_scope(batch.tenants[candidate.tenant_id]), transaction.atomic():
                    # Lead row first, then its clock: the lock order of leads.locks. A lead locked by
                    # someone else (another run, a rep logging a call) is left to the next tick.
                    lead = lead_lock(tenant=candidate.tenant_id, lead_id=candidate.lead_id, skip_locked=True)
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
