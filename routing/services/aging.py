"""The SLA Agent on untouched leads: aging flags and manager alerts (seed 003), recycling to nurture.

A lead is untouched since its owner got it when nothing was logged on it after the assignment:
the spell starts at GREATEST(last_activity_at, assigned_at). Past `aging_flag_hours` (48 by
default) it is flagged and the owner told; past `aging_alert_hours` (72) the manager is alerted
in-app and by email. Each happens once per spell: the flag columns guard the set-based UPDATEs,
and a new activity or a new assignment clears them (a new spell).
"""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_bulk, audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Agent, Tenant
from leads.locks import UNSET, lead_lock
from leads.models import OPEN_STATUSES, Lead, LeadStatus

from ..models import Notification, RoutingSettings
from ..notifications import managers_for_many, notifications_bulk
from .sla_clocks import SLA_AGENT, sla_clock_stop

DEFAULT_FLAG_HOURS, DEFAULT_ALERT_HOURS, DEFAULT_RECYCLE_AFTER = 48, 72, 6

# Outcomes of a call/email/meeting that mean the lead did not respond (normalised: lower case, "_").
NO_RESPONSE_OUTCOMES = frozenset({
    "no_answer", "no_response", "not_reached", "unreachable", "busy", "voicemail", "left_voicemail",
    "bounced", "no_reply", "no_show",
})


def outcome_is_no_response(outcome: str) -> bool:
    return re.sub(r"[\s\-]+", "_", (outcome or "").strip().lower()) in NO_RESPONSE_OUTCOMES


def routing_settings_for(*, tenant) -> RoutingSettings:
    """The tenant's routing settings, or an unsaved row with the defaults."""
    found = RoutingSettings.objects.for_tenant(tenant.pk).first()
    return found or RoutingSettings(tenant=tenant)


_AGING_SQL = """
WITH cfg AS (
  SELECT t.id AS tenant_id, COALESCE(rs.aging_flag_hours, %(flag)s) AS flag_h,
         COALESCE(rs.aging_alert_hours, %(alert)s) AS alert_h
  FROM tenancy_tenant t LEFT JOIN routing_routingsettings rs ON rs.tenant_id = t.id
  WHERE t.is_active AND (%(tenant)s::bigint IS NULL OR t.id = %(tenant)s::bigint)
    AND NOT EXISTS (SELECT 1 FROM tenancy_agentsetting a
                    WHERE a.tenant_id = t.id AND a.agent = %(agent)s AND NOT a.enabled)
)
UPDATE leads_lead l SET {set_sql}
FROM cfg
WHERE l.tenant_id = cfg.tenant_id AND l.owner_id IS NOT NULL AND l.status = ANY(%(open)s)
  AND l.{guard} IS NULL
  AND COALESCE(GREATEST(l.last_activity_at, l.assigned_at), l.created_at)
      <= %(now)s - make_interval(hours => cfg.{hours}::int)
RETURNING l.tenant_id, l.id, l.owner_id, l.first_name, l.last_name, l.email, l.phone, l.company,
          COALESCE(GREATEST(l.last_activity_at, l.assigned_at), l.created_at)
"""


def _mark(*, column: str, hours: str, now: dt.datetime, tenant) -> list[tuple]:
    set_sql = f"{column} = %(now)s"
    if column == "aging_alerted_at":
        set_sql += ", aging_flagged_at = COALESCE(l.aging_flagged_at, %(now)s)"
    with connection.cursor() as cursor:
        cursor.execute(_AGING_SQL.format(set_sql=set_sql, guard=column, hours=hours), {
            "flag": DEFAULT_FLAG_HOURS, "alert": DEFAULT_ALERT_HOURS, "agent": Agent.SLA.value, "now": now,
            "open": [s.value for s in OPEN_STATUSES], "tenant": tenant.pk if tenant is not None else None,
        })
        return cursor.fetchall()


def _label(first, last, email, phone, company) -> str:
    label = f"{first} {last}".strip() or email or phone
    return f"{label} ({company})" if company else label


def _hours_since(since: dt.datetime, now: dt.datetime) -> int:
    return int((now - since).total_seconds() // 3600)


def leads_aging_check(*, now: dt.datetime | None = None, tenant=None) -> dict:
    """Beat, every 15 minutes: flag leads untouched 48 h (owner told in-app) and alert the manager
    at 72 h (in-app and email). Set-based: two UPDATEs, then bulk notifications and audit rows, over
    every tenant at once (the `sweep` path of cross_tenant.py), or over the one given."""
    with cross_tenant("sweep") if tenant is None else tenant_scope(tenant), transaction.atomic():
        return _aging_check(now=now, tenant=tenant)


def _aging_check(*, now: dt.datetime | None, tenant) -> dict:
    now = now or timezone.now()
    flagged = _mark(column="aging_flagged_at", hours="flag_h", now=now, tenant=tenant)
    alerted = _mark(column="aging_alerted_at", hours="alert_h", now=now, tenant=tenant)
    notifications: list[Notification] = []
    events: list[AuditEvent] = []

    def event(tenant_id, lead_id, action, metadata):
        events.append(AuditEvent(tenant_id=tenant_id, actor_kind=SLA_AGENT.kind, actor_name=SLA_AGENT.name,
                                 action=action, object_type="leads.lead", object_id=str(lead_id), metadata=metadata))

    for tenant_id, lead_id, owner_id, *who, since in flagged:
        hours = _hours_since(since, now)
        notifications.append(Notification(
            tenant_id=tenant_id, user_id=owner_id, kind="lead_aging", lead_id=lead_id, created_at=now,
            title=f"Untouched for {hours} h: {_label(*who)}",
            body=f"Nothing has been logged on {_label(*who)} since {since:%Y-%m-%d %H:%M %Z}."))
        event(tenant_id, lead_id, "lead.aging_flagged", {"owner_id": owner_id, "untouched_since": since.isoformat(),
                                                          "hours": hours})
    by_tenant: dict[int, set] = defaultdict(set)
    for tenant_id, _lead_id, owner_id, *_rest in alerted:
        by_tenant[tenant_id].add(owner_id)
    tenants = Tenant.objects.in_bulk(list(by_tenant))
    managers = {tid: managers_for_many(tenant=tenants[tid], user_ids=owners) for tid, owners in by_tenant.items()}
    for tenant_id, lead_id, owner_id, *who, since in alerted:
        hours = _hours_since(since, now)
        targets = managers[tenant_id].get(owner_id, [])
        for manager in targets:
            notifications.append(Notification(
                tenant_id=tenant_id, user_id=manager.pk, kind="lead_aging_alert", lead_id=lead_id, created_at=now,
                email_due=True, title=f"Lead untouched for {hours} h: {_label(*who)}",
                body=f"{_label(*who)} has had nothing logged by its owner since {since:%Y-%m-%d %H:%M %Z}."))
        event(tenant_id, lead_id, "lead.aging_alerted", {"owner_id": owner_id, "hours": hours,
                                                          "managers": [m.pk for m in targets]})
    notifications_bulk(notifications=notifications)
    audit_bulk(events=events)
    return {"flagged": len(flagged), "alerted": len(alerted)}


@transaction.atomic
def lead_recycle(*, lead: Lead, actor: Actor, reason: str, expected_owner_id=UNSET,
                 now: dt.datetime | None = None) -> Lead:
    """Send a lead back to nurture: status "recycled", SLA clock stopped, aging flags cleared.

    The owner is kept: `lead_assign` is the one writer of owners, and a recycled lead drops out of
    every queue, capacity count and aging check by its status anyway; when nurture makes it ready
    again, routing runs and picks whoever should have it then. The stage is kept (the lead stays
    e.g. an MQL on record); nurture picks up recycled leads. Re-running is a no-op. A caller that
    passes `expected_owner_id` (the owner it saw) is refused if the lead changed hands meanwhile.
    """
    now = now or timezone.now()
    current = lead_lock(tenant=lead.tenant_id, lead_id=lead.pk, expected_owner_id=expected_owner_id)
    if current.status == LeadStatus.RECYCLED:
        return current
    if current.status not in OPEN_STATUSES:
        raise ValidationError({"status": [f"A {current.get_status_display().lower()} lead cannot be recycled."]})
    before = current.status
    Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk).update(
        status=LeadStatus.RECYCLED, aging_flagged_at=None, aging_alerted_at=None, updated_at=now)
    sla_clock_stop(lead=current, reason="recycled", now=now, actor=actor)
    audit_record(tenant=current.tenant, actor=actor, action="lead.recycled", obj=current,
                 changes={"status": [before, LeadStatus.RECYCLED]},
                 metadata={"reason": reason, "contact_attempts": current.contact_attempts})
    current.refresh_from_db()
    return current
