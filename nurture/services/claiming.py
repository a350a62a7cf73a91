"""Claiming the due nurture steps (`messages_claim`): one transaction under a per-tenant advisory lock
takes the tenant's budget for this minute, the due active enrolments (`FOR UPDATE SKIP LOCKED`, due
order), evaluates each step's condition, renders the message, inserts it as "sending" and advances the
enrolment, all in the same commit. The unique (enrolment, step position) row is the at-most-once
guarantee. Quiet hours are in the lead's time zone (its `timezone` attribute, else its phone number's,
else the tenant's). Sending the claimed messages is `sending.py`'s."""
from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import phonenumbers
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_bulk
from leadmgmt.tenancy.models import Tenant
from leads.erasure import erased_emails
from leads.models import OPEN_STATUSES, Lead, LeadStatus, Opportunity, OpportunityStage

from ..emails import unsubscribe_url
from ..models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Message,
    MessageStatus,
    NurtureSettings,
    PauseReason,
    SequenceStatus,
    Step,
    StepCondition,
    Suppression,
    SuppressionReason,
    WhenFalse,
)
from ..templating import template_render
from .enrollment import (
    CLOSED_STATUSES,
    NURTURE_AGENT,
    enrollments_exit,
)

CLAIM_LOCK = 774_201  # pg_advisory_xact_lock(CLAIM_LOCK, tenant_id): one claimer per tenant at a time
MAX_STEP_HOPS = 50


@dataclass
class Claim:
    message_ids: list[uuid.UUID] = field(default_factory=list)
    deferred: int = 0
    completed: int = 0
    exited: int = 0
    paused: int = 0


def update_rows(table: str, ids: list, columns: dict[str, tuple[list, str]], id_type: str = "bigint") -> None:
    """One UPDATE … FROM unnest(arrays) for many rows with different values (Django's bulk_update builds a
    CASE per row and column, which costs seconds for thousands of rows)."""
    if not ids:
        return
    names = list(columns)
    sets = ", ".join(f"{name} = v.{name}" for name in names)
    arrays = ", ".join(f"%s::{columns[name][1]}[]" for name in names)
    sql = (f"UPDATE {table} AS t SET {sets} FROM unnest(%s::{id_type}[], {arrays}) AS v(id, {', '.join(names)}) "
           f"WHERE t.id = v.id")
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [ids, *[columns[name][0] for name in names]])


# --- claiming ----------------------------------------------------------------------------------------


def lead_zone(lead: Lead, default: str) -> zoneinfo.ZoneInfo:
    """The lead's time zone: its `timezone` attribute, else its phone number's (when unambiguous), else `default`."""
    candidates = []
    attribute = (lead.attributes or {}).get("timezone") if isinstance(lead.attributes, dict) else None
    if isinstance(attribute, str):
        candidates.append(attribute)
    if lead.phone:
        try:
            from phonenumbers import timezone as phone_zones

            zones = phone_zones.time_zones_for_number(phonenumbers.parse(lead.phone, None))
            if len(zones) == 1 and zones[0] != "Etc/Unknown":
                candidates.append(zones[0])
        except phonenumbers.NumberParseException:
            pass
    candidates.append(default)
    for name in candidates:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return zoneinfo.ZoneInfo("UTC")


def quiet_until(*, now: datetime, zone: zoneinfo.ZoneInfo, start: time | None, end: time | None) -> datetime | None:
    """When the quiet hours that `now` falls in end (aware), or None when `now` is outside them."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone)


def _condition_holds(step: Step, previous: dict | None, lead: Lead) -> bool:
    condition = step.condition
    if condition == StepCondition.ALWAYS:
        return True
    if condition == StepCondition.SCORE_AT_LEAST:
        return lead.score is not None and step.condition_score is not None and lead.score >= step.condition_score
    opened = bool(previous and (previous["opened_at"] or previous["clicked_at"]))
    clicked = bool(previous and previous["clicked_at"])
    return {
        StepCondition.OPENED_PREVIOUS: opened,
        StepCondition.NOT_OPENED_PREVIOUS: previous is not None and not opened,
        StepCondition.CLICKED_PREVIOUS: clicked,
        StepCondition.NOT_CLICKED_PREVIOUS: previous is not None and not clicked,
    }.get(condition, False)


def _first_at_or_after(steps: list[Step], position: int | None) -> Step | None:
    if position is None:
        return None
    for step in steps:
        if step.position >= position:
            return step
    return None


def merge_context(*, lead: Lead, tenant: Tenant, nurture: NurtureSettings, message_id) -> dict[str, str]:
    owner = lead.owner
    owner_name = (owner.get_full_name() or owner.get_username()) if owner else (nurture.from_name or tenant.name)
    return {
        "first_name": lead.first_name, "last_name": lead.last_name, "full_name": lead.full_name,
        "email": lead.email, "company": lead.company, "job_title": lead.job_title,
        "owner_name": owner_name, "owner_email": owner.email if owner else (nurture.reply_to or nurture.from_email),
        "tenant_name": tenant.name, "unsubscribe_url": unsubscribe_url(message_id),
    }


@dataclass
class _ClaimFacts:
    """What deciding the due enrolments' steps needs, loaded for all of them in four queries."""

    steps_by_sequence: dict[int, list[Step]]
    previous: dict[int, dict]  # enrollment id → its last message's opened_at / clicked_at
    suppressed: dict[str, str]  # email → suppression reason
    with_opportunity: set  # lead ids with an open opportunity
    working_since: datetime


@dataclass
class _ClaimPlan:
    """What the claim writes: messages to insert and enrolments grouped by how they change."""

    messages: list[Message] = field(default_factory=list)
    exits: dict[str, list[int]] = field(default_factory=dict)  # reason → enrollment ids
    paused: list[Enrollment] = field(default_factory=list)
    completed: list[Enrollment] = field(default_factory=list)
    advanced: list[Enrollment] = field(default_factory=list)  # next_position / next_due_at moved
    deferred: int = 0


@transaction.atomic
def messages_claim(*, tenant: Tenant, nurture: NurtureSettings, now: datetime | None = None,
                   limit: int | None = None) -> Claim:
    """Pick the tenant's due steps within its rate budget, write their messages ("sending") and advance the
    enrolments, in one transaction. Returns the claimed message ids."""
    now = now or timezone.now()
    _claim_lock(tenant=tenant)
    budget = _claim_budget(tenant=tenant, nurture=nurture, now=now, limit=limit)
    if budget <= 0:
        return Claim()
    enrollments = _enrollments_due(tenant=tenant, now=now, budget=budget)
    if not enrollments:
        return Claim()
    facts = _claim_facts(tenant=tenant, nurture=nurture, enrollments=enrollments, now=now)
    plan = _ClaimPlan()
    for enrollment in enrollments:
        _enrollment_plan(enrollment, tenant=tenant, nurture=nurture, facts=facts, plan=plan, now=now)
    _claim_write(tenant=tenant, plan=plan, now=now)
    return Claim(message_ids=[m.pk for m in plan.messages], deferred=plan.deferred, completed=len(plan.completed),
                 exited=sum(len(ids) for ids in plan.exits.values()), paused=len(plan.paused))


def _claim_lock(*, tenant: Tenant) -> None:
    """One claimer per tenant at a time, until the transaction ends."""
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [CLAIM_LOCK, tenant.pk])


def _claim_budget(*, tenant: Tenant, nurture: NurtureSettings, now: datetime, limit: int | None) -> int:
    """How many messages may still be claimed this minute: the rate minus what the last 60 s claimed."""
    recent = Message.objects.for_tenant(tenant).filter(claimed_at__gt=now - timedelta(seconds=60)).count()
    budget = nurture.max_per_minute - recent
    return budget if limit is None else min(budget, limit)


def _enrollments_due(*, tenant: Tenant, now: datetime, budget: int) -> list[Enrollment]:
    """The due active enrolments of active sequences, in due order, locked (skipping ones another claimer holds)."""
    return list(
        Enrollment.objects.for_tenant(tenant).select_for_update(skip_locked=True, of=("self",))
        .filter(status=EnrollmentStatus.ACTIVE, next_due_at__lte=now, sequence__status=SequenceStatus.ACTIVE)
        .select_related("lead", "lead__owner", "sequence").order_by("next_due_at", "id")[:budget])


def _claim_facts(*, tenant: Tenant, nurture: NurtureSettings, enrollments: list[Enrollment],
                 now: datetime) -> _ClaimFacts:
    steps_by_sequence: dict[int, list[Step]] = {}
    sequence_ids = {e.sequence_id for e in enrollments}
    for step in Step.objects.for_tenant(tenant).filter(sequence_id__in=sequence_ids).order_by("position"):
        steps_by_sequence.setdefault(step.sequence_id, []).append(step)
    previous = {
        row["enrollment_id"]: row for row in
        Message.objects.for_tenant(tenant).filter(enrollment_id__in=[e.pk for e in enrollments])
        .order_by("enrollment_id", "-step_position").distinct("enrollment_id")
        .values("enrollment_id", "opened_at", "clicked_at")
    }
    emails = {e.lead.email.lower() for e in enrollments if e.lead.email}
    suppressed = dict(Suppression.objects.for_tenant(tenant).filter(email__in=emails)
                      .values_list("email", "reason"))
    # A person erased at their request (hashed list) is never mailed, even after a new form post.
    suppressed.update({email: SuppressionReason.MANUAL for email in erased_emails(tenant=tenant, emails=emails)
                       if email not in suppressed})
    with_opportunity = set(Opportunity.objects.for_tenant(tenant).filter(lead_id__in=[e.lead_id for e in enrollments])
                           .exclude(stage__in=[OpportunityStage.WON, OpportunityStage.LOST])
                           .values_list("lead_id", flat=True))
    return _ClaimFacts(steps_by_sequence=steps_by_sequence, previous=previous, suppressed=suppressed,
                       with_opportunity=with_opportunity,
                       working_since=now - timedelta(days=nurture.working_pause_days))


def _enrollment_plan(enrollment: Enrollment, *, tenant: Tenant, nurture: NurtureSettings, facts: _ClaimFacts,
                     plan: _ClaimPlan, now: datetime) -> None:
    """Decide one due enrolment: exit it, pause it for a working rep, defer it past quiet hours, or take its step."""
    lead = enrollment.lead
    enrollment.updated_at = now
    reason = _exit_reason(enrollment, facts=facts)
    if reason:
        plan.exits.setdefault(reason, []).append(enrollment.pk)
        return
    if _rep_working(lead, facts=facts):
        enrollment.status, enrollment.paused_reason, enrollment.paused_at = (
            EnrollmentStatus.PAUSED, PauseReason.REP_WORKING, now)
        plan.paused.append(enrollment)
        return
    until = quiet_until(now=now, zone=lead_zone(lead, tenant.timezone), start=nurture.quiet_hours_start,
                        end=nurture.quiet_hours_end)
    if until is not None:
        enrollment.next_due_at = until
        plan.advanced.append(enrollment)
        plan.deferred += 1
        return
    _step_take(enrollment, tenant=tenant, nurture=nurture, facts=facts, plan=plan, now=now)


def _exit_reason(enrollment: Enrollment, *, facts: _ClaimFacts) -> str | None:
    """Why the enrolment must end before sending (converted, closed, suppressed, no consent), or None."""
    lead = enrollment.lead
    if lead.status == LeadStatus.CONVERTED and not enrollment.sequence.audience_opportunity_lost:
        return ExitReason.CONVERTED
    if lead.status in CLOSED_STATUSES:
        return ExitReason.CLOSED
    if lead.email and lead.email.lower() in facts.suppressed:
        hard = facts.suppressed[lead.email.lower()] == SuppressionReason.HARD_BOUNCE
        return ExitReason.BOUNCED if hard else ExitReason.UNSUBSCRIBED
    if not lead.marketing_consent or not lead.email:
        return ExitReason.NO_CONSENT
    return None


def _rep_working(lead: Lead, *, facts: _ClaimFacts) -> bool:
    """A rep is on the lead: an open opportunity, or an owned open lead with recent activity."""
    return lead.pk in facts.with_opportunity or (
        lead.status in OPEN_STATUSES and lead.owner_id is not None
        and lead.last_activity_at is not None and lead.last_activity_at >= facts.working_since)


def _step_take(enrollment: Enrollment, *, tenant: Tenant, nurture: NurtureSettings, facts: _ClaimFacts,
               plan: _ClaimPlan, now: datetime) -> None:
    """From the enrolment's next step, follow false conditions (skip, go to, exit) to the step whose message
    is written now, a later step that waits for its delay, or the end of the sequence."""
    steps = facts.steps_by_sequence.get(enrollment.sequence_id, [])
    step = _first_at_or_after(steps, enrollment.next_position)
    for _hop in range(MAX_STEP_HOPS):
        if step is None:
            enrollment.status, enrollment.next_position, enrollment.next_due_at = (
                EnrollmentStatus.COMPLETED, None, None)
            enrollment.ended_at = now
            plan.completed.append(enrollment)
            return
        if _condition_holds(step, facts.previous.get(enrollment.pk), enrollment.lead):
            plan.messages.append(_message_render(enrollment, step=step, tenant=tenant, nurture=nurture, now=now))
            following = _first_at_or_after(steps, step.position + 1)
            enrollment.next_position = following.position if following else None
            enrollment.next_due_at = now + following.delay if following else None
            enrollment.messages_sent += 1
            plan.advanced.append(enrollment)
            return
        if step.when_false == WhenFalse.EXIT:
            plan.exits.setdefault(ExitReason.CONDITION, []).append(enrollment.pk)
            return
        target = step.goto_position if (step.when_false == WhenFalse.GOTO and step.goto_position
                                        and step.goto_position > step.position) else step.position + 1
        step = _first_at_or_after(steps, target)
        if step is not None and step.delay > timedelta(0):
            enrollment.next_position, enrollment.next_due_at = step.position, now + step.delay
            plan.advanced.append(enrollment)
            return


def _message_render(enrollment: Enrollment, *, step: Step, tenant: Tenant, nurture: NurtureSettings,
                    now: datetime) -> Message:
    """The step's message to the enrolment's lead, merged and ready to insert as "sending"."""
    lead = enrollment.lead
    message_id = uuid.uuid4()
    context = merge_context(lead=lead, tenant=tenant, nurture=nurture, message_id=message_id)
    subject = " ".join(template_render(step.subject, context).split())[:998]
    return Message(
        id=message_id, tenant=tenant, enrollment=enrollment, lead_id=lead.pk,
        sequence_id=enrollment.sequence_id, step=step, step_position=step.position, to_email=lead.email,
        subject=subject or enrollment.sequence.name, body_text=template_render(step.body, context),
        status=MessageStatus.SENDING, claimed_at=now)


def _claim_write(*, tenant: Tenant, plan: _ClaimPlan, now: datetime) -> None:
    """Insert the messages, write the enrolments' changes set-based, exit the exited, audit pauses and ends."""
    Message.objects.bulk_create(plan.messages)
    _enrollments_write(plan=plan, now=now)
    for reason, ids in plan.exits.items():
        enrollments_exit(tenant_id=tenant.pk, enrollment_ids=ids, reason=reason, actor=NURTURE_AGENT, now=now)
    events = [nurture_event(tenant.pk, "nurture.paused", e.lead_id, {"sequence": e.sequence.name, "enrollment_id": e.pk,
                                                              "reason": PauseReason.REP_WORKING.label})
              for e in plan.paused]
    events += [nurture_event(tenant.pk, "nurture.completed", e.lead_id, {"sequence": e.sequence.name, "enrollment_id": e.pk})
               for e in plan.completed]
    audit_bulk(events=events)


def _enrollments_write(*, plan: _ClaimPlan, now: datetime) -> None:
    """One UPDATE each for the advanced, the paused and the completed enrolments (none when a group is empty)."""
    advanced, paused, completed = plan.advanced, plan.paused, plan.completed
    update_rows("nurture_enrollment", [e.pk for e in advanced], {
        "next_position": ([e.next_position for e in advanced], "smallint"),
        "next_due_at": ([e.next_due_at for e in advanced], "timestamptz"),
        "messages_sent": ([e.messages_sent for e in advanced], "integer"),
        "updated_at": ([now for _ in advanced], "timestamptz")})
    update_rows("nurture_enrollment", [e.pk for e in paused], {
        "status": ([EnrollmentStatus.PAUSED.value for _ in paused], "varchar"),
        "paused_reason": ([PauseReason.REP_WORKING.value for _ in paused], "varchar"),
        "paused_at": ([now for _ in paused], "timestamptz"), "updated_at": ([now for _ in paused], "timestamptz")})
    update_rows("nurture_enrollment", [e.pk for e in completed], {
        "status": ([EnrollmentStatus.COMPLETED.value for _ in completed], "varchar"),
        "next_position": ([None for _ in completed], "smallint"),
        "next_due_at": ([None for _ in completed], "timestamptz"),
        "ended_at": ([now for _ in completed], "timestamptz"), "updated_at": ([now for _ in completed], "timestamptz")})


def nurture_event(tenant_id: int, action: str, lead_id, metadata: dict, actor: Actor = NURTURE_AGENT) -> AuditEvent:
    return AuditEvent(tenant_id=tenant_id, actor_kind=actor.kind, actor_name=actor.name, action=action,
                      object_type="leads.lead", object_id=str(lead_id), changes={}, metadata=metadata)


# --- sending -----------------------------------------------------------------------------------------
