"""Reads of the workspace: a lead's timeline across every app (touches, signals, activities, assignments,
nurture emails, audit events), its SLA state as the lead page shows it, and the rejection taxonomy."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from leadmgmt.tenancy.models import Tenant
from leads.models import Lead
from leads.selectors import lead_activities, lead_history, lead_signals, lead_touches
from nurture.models import Message
from routing.models import Assignment, RejectionReason, SlaClock


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    title: str
    detail: str = ""
    actor: str = ""


def lead_timeline(*, lead: Lead, limit: int = 100) -> list[TimelineEntry]:
    """Touches, signals, activities, assignments and audit events (stage changes, edits, SLA stops) of the
    lead, newest first, the latest `limit` of them: one query per source, each bounded by `limit`."""
    entries: list[TimelineEntry] = []
    for touch in lead_touches(lead=lead)[:limit]:
        form = touch.form.name if touch.form_id and touch.form else ""
        entries.append(TimelineEntry(touch.received_at, "touch", touch.get_kind_display(),
                                     " · ".join(x for x in (form, touch.source) if x)))
    for signal in lead_signals(lead=lead)[:limit]:
        entries.append(TimelineEntry(signal.occurred_at, "signal", signal.type.replace("_", " ").capitalize()))
    for activity in lead_activities(lead=lead)[:limit]:
        who = (activity.actor.get_full_name() or activity.actor.get_username()) if activity.actor else ""
        detail = " · ".join(x for x in (activity.outcome, activity.subject, activity.body) if x)
        entries.append(TimelineEntry(activity.occurred_at, "activity", activity.get_kind_display(), detail, who))
    assignments = (Assignment.objects.unscoped().filter(tenant_id=lead.tenant_id, lead=lead)
                   .select_related("owner").order_by("-at", "-id")[:limit])
    for assignment in assignments:
        to = (assignment.owner.get_full_name() or assignment.owner.get_username()) if assignment.owner else "nobody"
        entries.append(TimelineEntry(assignment.at, "assignment", f"Assigned to {to}",
                                     assignment.reason, assignment.actor_name))
    messages = (Message.objects.unscoped().filter(tenant_id=lead.tenant_id, lead=lead)
                .select_related("sequence").order_by("-claimed_at")[:limit])
    for message in messages:
        engagement = ", ".join(x for x in (
            f"opened {message.open_count}×" if message.opened_at else "",
            f"clicked {message.click_count}×" if message.clicked_at else "",
            message.get_status_display().lower() if message.status != "sent" else "") if x)
        entries.append(TimelineEntry(message.sent_at or message.claimed_at, "email", f"Email: {message.subject}",
                                     " · ".join(x for x in (message.sequence.name, f"step {message.step_position}",
                                                            engagement) if x), "Nurture Agent"))
    for event in lead_history(lead=lead)[:limit]:
        if event.action.startswith("nurture.") and event.action != "nurture.email_sent":
            entries.append(_nurture_entry(event))
            continue
        if event.action == "nurture.email_sent":
            continue  # shown from the message itself, with its opens and clicks
        stage = (event.changes or {}).get("stage")
        kind = "stage" if stage else "audit"
        title = f"Stage {stage[0]} → {stage[1]}" if stage and len(stage) == 2 else event.action.replace("_", " ")
        detail = ", ".join(f"{k}: {v[0] or '—'} → {v[1] or '—'}" for k, v in (event.changes or {}).items()
                           if k != "stage" and isinstance(v, list) and len(v) == 2)
        entries.append(TimelineEntry(event.at, kind, title, detail[:300], event.actor_name))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


_NURTURE_TITLES = {
    "nurture.enrolled": "Enrolled in nurture", "nurture.exited": "Left nurture", "nurture.paused": "Nurture paused",
    "nurture.resumed": "Nurture resumed", "nurture.completed": "Nurture completed",
    "nurture.email_failed": "Nurture email failed",
}


def _nurture_entry(event) -> TimelineEntry:
    meta = event.metadata or {}
    title = f"{_NURTURE_TITLES.get(event.action, event.action)}: {meta.get('sequence', '')}".rstrip(": ")
    detail = " · ".join(str(x) for x in (meta.get("label") or meta.get("reason") or meta.get("error") or "",
                                         meta.get("note") or "") if x)
    return TimelineEntry(event.at, "nurture", title, detail[:300], event.actor_name)


def lead_sla_state(*, lead: Lead) -> dict:
    """The lead's SLA clock as the page shows it: running (due, overdue), stopped (why, when) or none."""
    clock = (SlaClock.objects.unscoped().filter(tenant_id=lead.tenant_id, lead=lead)
             .order_by("-started_at", "-id").first())
    if clock is None:
        return {"state": "none", "clock": None}
    if clock.stopped_at is None:
        return {"state": "overdue" if clock.due_at <= timezone.now() else "running", "clock": clock}
    return {"state": "stopped", "clock": clock, "stop_label": (clock.stop_reason or "").replace("_", " ")}


def rejection_reasons(*, tenant: Tenant) -> list:
    """The tenant's active rejection taxonomy, in its order (reject and disqualify choices)."""
    return list(RejectionReason.objects.unscoped().filter(tenant=tenant, is_active=True).order_by("position", "id"))
