"""Reads of the workspace: a lead's timeline across every app (touches, signals, score changes, activities,
assignments, nurture emails, audit events) in words, who owns a lead now, its SLA state as the lead page shows
it, and the rejection taxonomy."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils import timezone

from leadmgmt.tenancy.models import Membership, Tenant
from leads.activity_outcomes import outcome_labels
from leads.models import Account, Lead, SignalType
from leads.selectors import lead_activities, lead_history, lead_signals, lead_touches
from leads.signal_catalog import BUILTIN_SIGNAL_NAMES
from nurture.models import Message
from routing.models import Assignment, RejectionReason, SlaClock
from scoring.models import ScoreCause
from scoring.selectors import score_history

from .timeline_words import (
    ROLE_WORDS,
    Names,
    TimelineEntry,
    actor_phrase,
    assignment_entry,
    audit_entry,
    nurture_entry,
    score_entry,
    signal_label,
    user_name,
)

__all__ = ["TimelineEntry", "lead_timeline", "lead_ownership", "lead_sla_state", "rejection_reasons"]

# Audit events another source tells better: the activity, the assignment, the touch, the signal, the message.
TIMELINE_SKIPPED_ACTIONS = ("lead.activity_logged", "lead.assigned", "lead.unassigned", "lead.created",
                            "lead.signals_processed", "lead.signals_attached", "nurture.email_sent")


def _names(*, tenant_id: int, user_ids: set, account_ids: set) -> Names:
    """Names and roles of the people, names of the accounts: one query each (two for people who left)."""
    people: dict[int, tuple[str, str]] = {}
    user_ids = {int(u) for u in user_ids if isinstance(u, int) or (isinstance(u, str) and u.isdigit())}
    if user_ids:
        for membership in (Membership.objects.for_tenant(tenant_id).filter(user_id__in=user_ids)
                           .select_related("user")):
            people[membership.user_id] = (user_name(membership.user), ROLE_WORDS.get(membership.role, ""))
        gone = user_ids - set(people)
        if gone:
            for user in get_user_model().objects.filter(pk__in=gone):
                people[user.pk] = (user_name(user), "")
    accounts = {}
    account_ids = {a for a in account_ids if isinstance(a, int)}
    if account_ids:
        accounts = dict(Account.objects.for_tenant(tenant_id).filter(pk__in=account_ids)
                        .values_list("pk", "domain"))
    return Names(people=people, accounts=accounts)


def _user_ids_of(event) -> set:
    """The people an audit event names: who acted, owners before/after, the AE of a handoff, SLA targets."""
    ids = {event.actor_user_id}
    ids.update((event.changes or {}).get("owner") or [])
    meta = event.metadata or {}
    ids.update(meta.get(key) for key in ("owner_id", "target_id", "ae_id", "sdr_id", "previous_owner_id"))
    return {i for i in ids if i is not None}


def _signals_by_score_change(changes: list, signals: list, labels: dict[str, str]) -> dict[int, list[str]]:
    """For each score change caused by signals, the labels of the signals processed since the change before."""
    out: dict[int, list[str]] = {}
    ordered = sorted(changes, key=lambda c: (c.at, c.pk))
    for index, change in enumerate(ordered):
        if change.cause != ScoreCause.SIGNAL:
            continue
        after = ordered[index - 1].at if index else None
        out[change.pk] = sorted({signal_label(s.type, labels) for s in signals if s.processed_at is not None
                                 and s.processed_at <= change.at and (after is None or s.processed_at > after)})
    return out


def lead_timeline(*, lead: Lead, limit: int = 100) -> list[TimelineEntry]:
    """What happened to the lead, newest first, in words with names (`workspace.timeline_words`): form
    submissions, signals, score changes with their cause, activities with their outcome, assignments,
    nurture emails, lead actions, stage changes, edits and SLA clocks. The latest `limit`, in a bounded
    number of queries: one per source (each bounded by `limit`), then people, signal types and accounts in bulk."""
    touches = list(lead_touches(lead=lead)[:limit])
    signals = list(lead_signals(lead=lead)[:limit])
    activities = list(lead_activities(lead=lead)[:limit])
    assignments = list(Assignment.objects.for_tenant(lead.tenant_id).filter(lead=lead)
                       .order_by("-at", "-id")[:limit])
    messages = list(Message.objects.for_tenant(lead.tenant_id).filter(lead=lead)
                    .select_related("sequence").order_by("-claimed_at")[:limit])
    events = list(lead_history(lead=lead).exclude(action__in=TIMELINE_SKIPPED_ACTIONS)[:limit])
    score_changes = list(score_history(lead=lead).order_by("-at", "-id")[:limit])

    user_ids = {a.actor_user_id for a in assignments} | {a.owner_id for a in assignments} \
        | {a.previous_owner_id for a in assignments}
    for event in events:
        user_ids |= _user_ids_of(event)
    account_ids = {v for e in events for v in ((e.changes or {}).get("account") or [])}
    names = _names(tenant_id=lead.tenant_id, user_ids=user_ids - {None}, account_ids=account_ids)
    custom = {s.type for s in signals} - BUILTIN_SIGNAL_NAMES
    signal_labels = dict(SignalType.objects.for_tenant(lead.tenant_id).filter(name__in=custom)
                         .values_list("name", "label")) if custom else {}
    outcomes = outcome_labels(tenant_id=lead.tenant_id) if any(a.outcome for a in activities) else {}

    entries: list[TimelineEntry] = []
    for touch in touches:
        where = f"the form “{touch.form.name}”" if touch.form_id and touch.form else (touch.source or "an import")
        title = (f"Came in through {where}" if touch.kind == "created"
                 else f"Submitted again through {where}: merged into this lead")
        entries.append(TimelineEntry(touch.received_at, "touch", title, touch.source if touch.form_id else ""))
    for signal in signals:
        page = (signal.properties or {}).get("url") or (signal.properties or {}).get("page_url") or ""
        entries.append(TimelineEntry(signal.occurred_at, "signal", f"Signal: {signal_label(signal.type, signal_labels)}",
                                     str(page)[:500]))
    labels_by_change = _signals_by_score_change(score_changes, signals, signal_labels)
    for change in score_changes:
        entries.append(score_entry(change, labels_by_change.get(change.pk, [])))
    for activity in activities:
        who = user_name(activity.actor)
        outcome = outcomes.get(activity.outcome, activity.outcome.replace("_", " ")) if activity.outcome else ""
        title = f"{activity.get_kind_display()}" + (f" by {who}" if who else "") + (f": {outcome}" if outcome else "")
        detail = "\n\n".join(x for x in (activity.subject, activity.body) if x)
        entries.append(TimelineEntry(activity.occurred_at, "activity", title, detail, who))
    for assignment in assignments:
        entries.append(assignment_entry(assignment, names))
    for message in messages:
        engagement = ", ".join(x for x in (
            f"opened {message.open_count}×" if message.opened_at else "",
            f"clicked {message.click_count}×" if message.clicked_at else "",
            message.get_status_display().lower() if message.status != "sent" else "") if x)
        entries.append(TimelineEntry(message.sent_at or message.claimed_at, "email", f"Email: {message.subject}",
                                     " · ".join(x for x in (message.sequence.name, f"step {message.step_position}",
                                                            engagement) if x), "Nurture Agent"))
    for event in events:
        entry = nurture_entry(event) if event.action.startswith("nurture.") else audit_entry(event, names)
        if entry is not None:
            entries.append(entry)
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def lead_ownership(*, lead: Lead) -> dict:
    """Who owns the lead now, as the read-only page and a refused stale action say it: the owner's name and
    role, since when, and who made the latest change of hands (two queries)."""
    latest = (Assignment.objects.for_tenant(lead.tenant_id).filter(lead=lead).order_by("-at", "-id")
              .only("at", "owner_id", "actor_kind", "actor_name", "actor_user_id").first())
    names = _names(tenant_id=lead.tenant_id, account_ids=set(),
                   user_ids={i for i in (lead.owner_id, latest.actor_user_id if latest else None) if i is not None})
    by = actor_phrase(kind=latest.actor_kind, name=latest.actor_name, user_id=latest.actor_user_id,
                      names=names) if latest is not None else ""
    if lead.owner_id is None:
        return {"owner": None, "name": "", "role": "", "since": latest.at if latest else None, "by": by}
    name, role = names.people.get(lead.owner_id, (user_name(lead.owner), ""))
    return {"owner": lead.owner, "name": name, "role": role, "since": lead.assigned_at, "by": by}


def lead_sla_state(*, lead: Lead) -> dict:
    """The lead's SLA clock as the page shows it: running (due, overdue), stopped (why, when) or none."""
    clock = (SlaClock.objects.for_tenant(lead.tenant_id).filter(lead=lead)
             .order_by("-started_at", "-id").first())
    if clock is None:
        return {"state": "none", "clock": None}
    if clock.stopped_at is None:
        return {"state": "overdue" if clock.due_at <= timezone.now() else "running", "clock": clock}
    return {"state": "stopped", "clock": clock, "stop_label": (clock.stop_reason or "").replace("_", " ")}


def rejection_reasons(*, tenant: Tenant) -> list:
    """The tenant's active rejection taxonomy, in its order (reject and disqualify choices)."""
    return list(RejectionReason.objects.for_tenant(tenant).filter(is_active=True).order_by("position", "id"))
