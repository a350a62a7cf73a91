"""Merging a possible-duplicate pair, and undoing it (the merge review queue; seed 003: "keep the richer record
and notify the affected reps").

A merge keeps one lead (the survivor) and archives the other (merged into it). The survivor takes, field by
field, the value the reviewer picked (by default the richer one: its own unless blank); the other lead's
touches, signals, activities, stage history, opportunities, score history, assignments, SLA clocks and their
escalations, notifications, enrolments and messages move to the survivor in one statement, so nothing the
other lead had is lost. Its running SLA clock is stopped and its live enrolments end first (a lead has one of
each at a time). Both owners are notified. The pair remembers what the merge changed, so `duplicate_merge_undo`
puts back exactly that: the rows it moved, the survivor's fields it filled (those nobody has edited since) and
the other lead's status; the pair is open again for a new decision.

Top floor: it reaches into every app's tables (leads, scoring, routing, nurture).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import webhook_emit, webhook_subscribed
from leads.locks import leads_lock
from leads.models import (
    DuplicatePair,
    DuplicateStatus,
    Lead,
    LeadStatus,
    Opportunity,
    OpportunityStage,
)
from leads.webhooks import lead_webhook_data
from nurture.models import ExitReason
from nurture.services.enrollment import enrollments_exit
from routing.notifications import lead_label, notify
from routing.services.sla_clocks import sla_clock_stop
from scoring.models import ScoreCause
from scoring.services import lead_score_enqueue

# Fields a reviewer picks between, in the order the review shows them. Email is not among them: it is who
# the lead is (unique per tenant), so the survivor keeps its own, and a lead with an email is the survivor
# of a lead without one.
MERGE_FIELDS = (
    "first_name", "last_name", "phone", "job_title", "company", "company_domain", "company_size", "industry",
    "country", "source", "campaign", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "product_interest", "budget", "authority", "need", "timeline",
)
MERGE_MARK = "merged"

# Every table that holds rows of a lead, moved to the survivor in one statement (ids kept for the undo).
_MOVED_TABLES = (
    "leads_touch", "leads_signal", "leads_activity", "leads_stagetransition", "leads_opportunity",
    "scoring_scorechange", "scoring_scoreevent", "routing_assignment", "routing_slaclock", "routing_escalation",
    "routing_notification", "nurture_enrollment", "nurture_message",
)


def _jsonable(value: Any) -> Any:
    """`value` as the merge record stores it (JSON: dates as ISO strings)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _blank(value) -> bool:
    return value in (None, "", [], {})


def merge_defaults(*, survivor: Lead, other: Lead) -> dict[str, str]:
    """The richer value of each field: the survivor's unless it is blank and the other lead's is not."""
    return {name: "other" if _blank(getattr(survivor, name)) and not _blank(getattr(other, name)) else "survivor"
            for name in MERGE_FIELDS}


def survivor_default(*, lead: Lead, other: Lead) -> Lead:
    """Which lead a merge keeps unless the reviewer says otherwise: the one with an email if only one has one,
    else the one with more filled fields, else the older one."""
    if bool(lead.email) != bool(other.email):
        return lead if lead.email else other

    def filled(candidate: Lead) -> int:
        return sum(not _blank(getattr(candidate, name)) for name in MERGE_FIELDS)

    return max((lead, other), key=lambda candidate: (filled(candidate), -candidate.created_at.timestamp()))


@dataclass(frozen=True)
class MergeResult:
    survivor: Lead
    merged: Lead
    moved: dict[str, int]


def _pair_locked(pair: DuplicatePair) -> DuplicatePair:
    return DuplicatePair.objects.for_tenant(pair.tenant_id).select_for_update().get(pk=pair.pk)


def _move_rows(*, tenant_id: int, from_id, to_id) -> dict[str, list[int]]:
    """Re-point every row of lead `from_id` to lead `to_id`: one statement; returns the moved ids per table."""
    ctes = [f"m{n} AS (UPDATE {table} SET lead_id = %(to)s WHERE tenant_id = %(t)s AND lead_id = %(from)s "  # noqa: S608
            "RETURNING id)" for n, table in enumerate(_MOVED_TABLES)]
    selects = [f"ARRAY(SELECT id FROM m{n} ORDER BY id)" for n in range(len(_MOVED_TABLES))]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT {', '.join(selects)}",
                       {"t": tenant_id, "from": str(from_id), "to": str(to_id)})
        row = cursor.fetchone()
    return {table: list(ids) for table, ids in zip(_MOVED_TABLES, row, strict=True) if ids}


def _move_back(*, tenant_id: int, moved: dict[str, list[int]], from_id, to_id) -> int:
    """Undo `_move_rows`: the rows it moved that are still on `from_id` go back to `to_id`."""
    tables = [table for table in _MOVED_TABLES if moved.get(table)]
    if not tables:
        return 0
    params: dict[str, Any] = {"t": tenant_id, "from": str(from_id), "to": str(to_id)}
    ctes = []
    for n, table in enumerate(tables):
        params[f"ids{n}"] = moved[table]
        ctes.append(f"b{n} AS (UPDATE {table} SET lead_id = %(to)s WHERE tenant_id = %(t)s "  # noqa: S608
                    f"AND lead_id = %(from)s AND id = ANY(%(ids{n})s) RETURNING 1)")
    total = " + ".join(f"(SELECT count(*) FROM b{n})" for n in range(len(tables)))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} SELECT {total}", params)
        return cursor.fetchone()[0]


def _notify_owners(*, leads: list[Lead], actor: Actor, title: str, body: str, target: Lead, now: datetime) -> None:
    for user_id in sorted({lead.owner_id for lead in leads if lead.owner_id} - {getattr(actor.user, "pk", None)}):
        notify(tenant=target.tenant_id, user=user_id, kind="duplicate_merged", title=title, body=body, lead=target,
               email=True, now=now)


def duplicate_merge(*, pair: DuplicatePair, actor: Actor, survivor_id=None, picks: dict[str, str] | None = None,
                    now: datetime | None = None) -> MergeResult:
    """Merge the pair's two leads into `survivor_id` (default: `survivor_default`), each field taking the value
    `picks` names ("survivor" or "other"; default: the richer). ValidationError (field messages) when the pair
    is not open, a lead is archived, the survivor would lose the only email, or both have an open opportunity."""
    now = now or timezone.now()
    picks = picks or {}
    unknown = sorted(set(picks) - set(MERGE_FIELDS))
    if unknown:
        raise ValidationError({"values": [f"Not a field a merge picks: {', '.join(unknown)}."]})
    bad = sorted(name for name, side in picks.items() if side not in ("survivor", "other"))
    if bad:
        raise ValidationError({"values": [f"Pick \"survivor\" or \"other\" for {', '.join(bad)}."]})
    with transaction.atomic():
        pair = _pair_locked(pair)
        if pair.status != DuplicateStatus.OPEN:
            raise ValidationError({"pair": [f"This pair is already {pair.get_status_display().lower()}."]})
        leads = {lead.pk: lead for lead in leads_lock(tenant=pair.tenant_id, lead_ids=[pair.lead_id, pair.other_id])}
        if len(leads) != 2:
            raise ValidationError({"pair": ["One of the two leads no longer exists."]})
        first, second = leads[pair.lead_id], leads[pair.other_id]
        if LeadStatus.ARCHIVED in (first.status, second.status):
            raise ValidationError({"pair": ["One of the two leads is archived; restore it before merging."]})
        if survivor_id is None:
            survivor = survivor_default(lead=first, other=second)
        elif str(survivor_id) in (str(first.pk), str(second.pk)):
            survivor = first if str(first.pk) == str(survivor_id) else second
        else:
            raise ValidationError({"survivor_id": ["Keep one of the pair's two leads."]})
        other = second if survivor is first else first
        if other.email and not survivor.email:
            raise ValidationError({"survivor_id": ["Keep the lead with the email address: the other has none."]})
        open_opportunities = (Opportunity.objects.for_tenant(pair.tenant_id)
                              .filter(lead_id__in=[first.pk, second.pk])
                              .exclude(stage__in=[OpportunityStage.WON, OpportunityStage.LOST]).count())
        if open_opportunities > 1:
            raise ValidationError({"pair": ["Both leads have an open opportunity: close one before merging."]})

        chosen = {**merge_defaults(survivor=survivor, other=other), **picks}
        survivor_before, changes = {}, {}
        for name in MERGE_FIELDS:
            if chosen[name] == "other" and getattr(other, name) != getattr(survivor, name):
                survivor_before[name] = getattr(survivor, name)
                changes[name] = [getattr(survivor, name), getattr(other, name)]
                setattr(survivor, name, getattr(other, name))
        new_attributes = {k: v for k, v in (other.attributes or {}).items() if k not in (survivor.attributes or {})}
        if new_attributes:
            survivor_before["attributes"] = survivor.attributes
            survivor.attributes = {**(survivor.attributes or {}), **new_attributes}
            changes.update({f"attributes.{k}": [None, v] for k, v in new_attributes.items()})
        survivor.last_activity_at = max(filter(None, [survivor.last_activity_at, other.last_activity_at, now]))
        survivor.save(update_fields=[*{n.split(".")[0] for n in changes}, "last_activity_at", "updated_at"])

        clock = sla_clock_stop(lead=other, reason=MERGE_MARK, now=now, actor=actor)
        stopped = [clock.pk] if clock is not None else []
        exited = [row[0] for row in enrollments_exit(tenant_id=pair.tenant_id, lead_ids=[other.pk],
                                                      reason=ExitReason.CLOSED, actor=actor,
                                                      note=f"Merged into {lead_label(survivor)}", now=now)]
        moved = _move_rows(tenant_id=pair.tenant_id, from_id=other.pk, to_id=survivor.pk)
        other_before = {"status": other.status, "archived_at": other.archived_at,
                        "archive_reason": other.archive_reason, "sla_due_at": other.sla_due_at}
        other.status, other.archived_at, other.sla_due_at = LeadStatus.ARCHIVED, now, None
        other.archive_reason = f"Merged into {lead_label(survivor)}"[:200]
        other.save(update_fields=["status", "archived_at", "archive_reason", "sla_due_at", "updated_at"])

        pair.status, pair.resolved_at, pair.resolved_by = DuplicateStatus.MERGED, now, actor.user
        pair.survivor = survivor
        pair.merge_record = _jsonable({
            "survivor_before": survivor_before, "survivor_after": {n: getattr(survivor, n) for n in survivor_before},
            "other_before": other_before, "moved": moved, "stopped_clocks": stopped, "exited_enrollments": exited,
        })
        pair.save(update_fields=["status", "resolved_at", "resolved_by", "survivor", "merge_record"])
        counts = {table: len(ids) for table, ids in moved.items()}
        audit_record(tenant=pair.tenant, actor=actor, action="lead.duplicate_merged", obj=survivor, changes=changes,
                     metadata={"pair_id": pair.pk, "merged_id": str(other.pk), "reason": pair.reason,
                               "tier": pair.tier, "moved": counts})
        audit_record(tenant=pair.tenant, actor=actor, action="lead.merged_into", obj=other,
                     changes={"status": [other_before["status"], LeadStatus.ARCHIVED]},
                     metadata={"pair_id": pair.pk, "survivor_id": str(survivor.pk)})
        _notify_owners(leads=[first, second], actor=actor, target=survivor, now=now,
                       title=f"Duplicate merged: {lead_label(survivor)}"[:200],
                       body=f"{lead_label(other)} was merged into {lead_label(survivor)} by {actor.name}; "
                            "its history is on this lead now.")
        if webhook_subscribed(tenant=pair.tenant, event_type=WebhookEventType.LEAD_MERGED):
            webhook_emit(tenant=pair.tenant, event_type=WebhookEventType.LEAD_MERGED, lead_id=survivor.pk, now=now,
                         data={"lead": lead_webhook_data(survivor), "matched_on": pair.reason,
                               "merged_lead_id": str(other.pk), "duplicate_pair_id": pair.pk,
                               "changed_fields": sorted({name.split(".")[0] for name in changes})})
        lead_score_enqueue(tenant=survivor.tenant, lead_ids=[survivor.pk], cause=ScoreCause.MANUAL)
    return MergeResult(survivor=survivor, merged=other, moved=counts)


def duplicate_merge_undo(*, pair: DuplicatePair, actor: Actor, now: datetime | None = None) -> DuplicatePair:
    """Put back what the merge of `pair` changed: the moved rows (those still on the survivor), the survivor's
    fields the merge filled (unless edited since) and the other lead's status. The pair is open again."""
    now = now or timezone.now()
    with transaction.atomic():
        pair = _pair_locked(pair)
        if pair.status != DuplicateStatus.MERGED or not pair.merge_record:
            raise ValidationError({"pair": ["Only a merged pair can be undone."]})
        record = pair.merge_record
        survivor_id = pair.survivor_id
        other_id = pair.other_id if str(pair.lead_id) == str(survivor_id) else pair.lead_id
        leads = {lead.pk: lead for lead in leads_lock(tenant=pair.tenant_id, lead_ids=[survivor_id, other_id])}
        survivor, other = leads[survivor_id], leads[other_id]
        moved_back = _move_back(tenant_id=pair.tenant_id, moved=record.get("moved", {}), from_id=survivor.pk,
                                to_id=other.pk)
        reverted = {}
        for name, before in record.get("survivor_before", {}).items():
            after = record.get("survivor_after", {}).get(name)
            if _jsonable(getattr(survivor, name)) == after:  # nobody changed it since: the merge's value
                reverted[name] = [getattr(survivor, name), before]
                setattr(survivor, name, before)
        if reverted:
            survivor.save(update_fields=[*reverted, "updated_at"])
        before = record.get("other_before", {})
        other.status = before.get("status", LeadStatus.NEW)
        other.archive_reason = before.get("archive_reason", "")
        other.archived_at = before.get("archived_at")
        other.save(update_fields=["status", "archive_reason", "archived_at", "updated_at"])
        pair.status, pair.resolved_at, pair.resolved_by, pair.survivor, pair.merge_record = (
            DuplicateStatus.OPEN, None, None, None, None)
        pair.save(update_fields=["status", "resolved_at", "resolved_by", "survivor", "merge_record"])
        audit_record(tenant=pair.tenant, actor=actor, action="lead.duplicate_merge_undone", obj=survivor,
                     changes=reverted, metadata={"pair_id": pair.pk, "restored_id": str(other.pk),
                                                 "rows_moved_back": moved_back})
        audit_record(tenant=pair.tenant, actor=actor, action="lead.merge_undone", obj=other,
                     changes={"status": [LeadStatus.ARCHIVED, other.status]},
                     metadata={"pair_id": pair.pk, "survivor_id": str(survivor.pk)})
        lead_score_enqueue(tenant=survivor.tenant, lead_ids=[survivor.pk, other.pk], cause=ScoreCause.MANUAL)
    return pair
