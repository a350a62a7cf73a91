"""The Nurture Agent's minute: enrol, exit, pause/resume, then send the due steps, at most once each.

Per tenant whose agent is on, `nurture_tenant_run`:
  1. the set-based sweeps of `enrollment.py` (auto-enrol, exits incl. readiness → routing, pause while a
     rep works the lead, resume);
  2. `messages_claim`, one transaction under a per-tenant advisory lock: the tenant's budget for this
     minute (`max_per_minute` minus what was claimed in the last 60 s), the due active enrolments picked
     with `FOR UPDATE SKIP LOCKED` in due order, each step's condition evaluated (skip, go to a later
     step, or end), the message rendered and inserted as "sending", and the enrolment advanced — all in
     the same commit. The unique (enrolment, step position) row is the at-most-once guarantee: a
     second run, a duplicate task or an overlapping beat finds the enrolment already advanced (or the
     row locked) and cannot write a second message for the step;
  3. `messages_send`, outside the transaction: one SMTP connection, each message sent and marked "sent"
     (in chunks) or "failed" with the error. Nothing is ever re-sent blindly: if the server cannot be
     reached at all the claimed messages were never transmitted, so they are released (deleted, their
     enrolments put back to retry next minute); a message whose send was cut off midway is marked
     failed, and one left "sending" by a killed worker is marked failed after `STALE_AFTER` — the lead
     may miss that email but never gets it twice.
Quiet hours are in the lead's time zone (its `timezone` attribute, else the zone of its phone number,
else the tenant's): a step due inside them is deferred to their end.
"""
from __future__ import annotations

import logging
import smtplib
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import phonenumbers
from django.core.mail import get_connection
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_bulk
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, AgentSetting, Tenant
from leads.models import OPEN_LEAD_STATUSES, Lead, LeadStatus, Opportunity, OpportunityStage

from ..emails import email_build, unsubscribe_url
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
    enrollments_auto_enroll,
    enrollments_exit,
    enrollments_exit_sweep,
    enrollments_pause_sweep,
)

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=15)
CLAIM_LOCK = 774_201  # pg_advisory_xact_lock(CLAIM_LOCK, tenant_id): one claimer per tenant at a time
SEND_CHUNK = 200
MAX_STEP_HOPS = 50


@dataclass
class TenantRun:
    tenant_id: int
    enrolled: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    paused: int = 0
    resumed: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    released: int = 0
    deferred: int = 0
    completed: int = 0
    stale: int = 0
    skipped: str = ""


@dataclass
class Claim:
    message_ids: list[uuid.UUID] = field(default_factory=list)
    deferred: int = 0
    completed: int = 0
    exited: int = 0
    paused: int = 0


# --- the agent ---------------------------------------------------------------------------------------


def nurture_agent_run(*, now: datetime | None = None, tenant_ids=None) -> list[TenantRun]:
    """One pass over every active tenant whose Nurture Agent is on."""
    off = AgentSetting.objects.unscoped().filter(agent=Agent.NURTURE, enabled=False).values("tenant_id")
    tenants = Tenant.objects.filter(is_active=True).exclude(pk__in=off).order_by("pk")
    if tenant_ids is not None:
        tenants = tenants.filter(pk__in=list(tenant_ids))
    runs = []
    for tenant in tenants:
        with tenant_scope(tenant):
            try:
                runs.append(nurture_tenant_run(tenant=tenant, now=now))
            except Exception:  # one tenant's failure must not stop the others; the next minute retries
                logger.exception("Nurture run failed for tenant %s", tenant.pk)
    return runs


def nurture_tenant_run(*, tenant: Tenant, now: datetime | None = None, send: bool = True) -> TenantRun:
    now = now or timezone.now()
    run = TenantRun(tenant_id=tenant.pk)
    run.enrolled = enrollments_auto_enroll(tenant=tenant, now=now)
    run.exited = enrollments_exit_sweep(tenant=tenant, now=now)
    run.paused, run.resumed = enrollments_pause_sweep(tenant=tenant, now=now)
    run.stale = messages_fail_stale(tenant=tenant, now=now)
    nurture = NurtureSettings.objects.unscoped().filter(tenant=tenant).first()
    if nurture is None or not nurture.postal_address.strip():
        run.skipped = "No postal address in the nurture settings: nothing is sent until one is set."
        return run
    claim = messages_claim(tenant=tenant, nurture=nurture, now=now)
    run.claimed, run.deferred, run.completed = len(claim.message_ids), claim.deferred, claim.completed
    if send and claim.message_ids:
        outcome = messages_send(tenant=tenant, nurture=nurture, message_ids=claim.message_ids)
        run.sent, run.failed, run.released = outcome
    return run


def _update_rows(table: str, ids: list, columns: dict[str, tuple[list, str]], id_type: str = "bigint") -> None:
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
    recent = Message.objects.unscoped().filter(tenant=tenant, claimed_at__gt=now - timedelta(seconds=60)).count()
    budget = nurture.max_per_minute - recent
    return budget if limit is None else min(budget, limit)


def _enrollments_due(*, tenant: Tenant, now: datetime, budget: int) -> list[Enrollment]:
    """The due active enrolments of active sequences, in due order, locked (skipping ones another claimer holds)."""
    return list(
        Enrollment.objects.unscoped().select_for_update(skip_locked=True, of=("self",))
        .filter(tenant=tenant, status=EnrollmentStatus.ACTIVE, next_due_at__lte=now,
                sequence__status=SequenceStatus.ACTIVE)
        .select_related("lead", "lead__owner", "sequence").order_by("next_due_at", "id")[:budget])


def _claim_facts(*, tenant: Tenant, nurture: NurtureSettings, enrollments: list[Enrollment],
                 now: datetime) -> _ClaimFacts:
    steps_by_sequence: dict[int, list[Step]] = {}
    sequence_ids = {e.sequence_id for e in enrollments}
    for step in Step.objects.unscoped().filter(tenant=tenant, sequence_id__in=sequence_ids).order_by("position"):
        steps_by_sequence.setdefault(step.sequence_id, []).append(step)
    previous = {
        row["enrollment_id"]: row for row in
        Message.objects.unscoped().filter(tenant=tenant, enrollment_id__in=[e.pk for e in enrollments])
        .order_by("enrollment_id", "-step_position").distinct("enrollment_id")
        .values("enrollment_id", "opened_at", "clicked_at")
    }
    emails = {e.lead.email.lower() for e in enrollments if e.lead.email}
    suppressed = dict(Suppression.objects.unscoped().filter(tenant=tenant, email__in=emails)
                      .values_list("email", "reason"))
    with_opportunity = set(Opportunity.objects.unscoped().filter(tenant=tenant, lead_id__in=[e.lead_id for e in enrollments])
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
        lead.status in OPEN_LEAD_STATUSES and lead.owner_id is not None
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
    Message.objects.unscoped().bulk_create(plan.messages)
    _enrollments_write(plan=plan, now=now)
    for reason, ids in plan.exits.items():
        enrollments_exit(tenant_id=tenant.pk, enrollment_ids=ids, reason=reason, actor=NURTURE_AGENT, now=now)
    events = [_event(tenant.pk, "nurture.paused", e.lead_id, {"sequence": e.sequence.name, "enrollment_id": e.pk,
                                                              "reason": PauseReason.REP_WORKING.label})
              for e in plan.paused]
    events += [_event(tenant.pk, "nurture.completed", e.lead_id, {"sequence": e.sequence.name, "enrollment_id": e.pk})
               for e in plan.completed]
    audit_bulk(events=events)


def _enrollments_write(*, plan: _ClaimPlan, now: datetime) -> None:
    """One UPDATE each for the advanced, the paused and the completed enrolments (none when a group is empty)."""
    advanced, paused, completed = plan.advanced, plan.paused, plan.completed
    _update_rows("nurture_enrollment", [e.pk for e in advanced], {
        "next_position": ([e.next_position for e in advanced], "smallint"),
        "next_due_at": ([e.next_due_at for e in advanced], "timestamptz"),
        "messages_sent": ([e.messages_sent for e in advanced], "integer"),
        "updated_at": ([now for _ in advanced], "timestamptz")})
    _update_rows("nurture_enrollment", [e.pk for e in paused], {
        "status": ([EnrollmentStatus.PAUSED.value for _ in paused], "varchar"),
        "paused_reason": ([PauseReason.REP_WORKING.value for _ in paused], "varchar"),
        "paused_at": ([now for _ in paused], "timestamptz"), "updated_at": ([now for _ in paused], "timestamptz")})
    _update_rows("nurture_enrollment", [e.pk for e in completed], {
        "status": ([EnrollmentStatus.COMPLETED.value for _ in completed], "varchar"),
        "next_position": ([None for _ in completed], "smallint"),
        "next_due_at": ([None for _ in completed], "timestamptz"),
        "ended_at": ([now for _ in completed], "timestamptz"), "updated_at": ([now for _ in completed], "timestamptz")})


def _event(tenant_id: int, action: str, lead_id, metadata: dict, actor: Actor = NURTURE_AGENT) -> AuditEvent:
    return AuditEvent(tenant_id=tenant_id, actor_kind=actor.kind, actor_name=actor.name, action=action,
                      object_type="leads.lead", object_id=str(lead_id), changes={}, metadata=metadata)


# --- sending -----------------------------------------------------------------------------------------


def messages_send(*, tenant: Tenant, nurture: NurtureSettings, message_ids) -> tuple[int, int, int]:
    """Send claimed messages over one SMTP connection; returns (sent, failed, released)."""
    messages = list(Message.objects.unscoped().filter(tenant=tenant, pk__in=list(message_ids),
                                                      status=MessageStatus.SENDING)
                    .select_related("sequence").order_by("claimed_at", "enrollment_id"))
    if not messages:
        return 0, 0, 0
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("SMTP server unreachable for tenant %s: %s", tenant.pk, exc)
        return 0, 0, messages_release(tenant=tenant, messages=messages)
    sent: list[tuple[Message, str, datetime]] = []
    failed: list[tuple[Message, str]] = []
    untried: list[Message] = []
    try:
        for index, message in enumerate(messages):
            email = email_build(message=message, nurture=nurture, tenant_name=tenant.name, connection=connection)
            try:
                email.send(fail_silently=False)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                # Cut off mid-message: it may have gone out, so it is not retried; the rest never left.
                failed.append((message, f"Connection lost while sending: {exc}"))
                untried = messages[index + 1:]
                break
            except smtplib.SMTPException as exc:
                failed.append((message, f"Refused by the mail server: {exc}"))
            else:
                sent.append((message, email.extra_headers["Message-ID"], timezone.now()))
            if len(sent) >= SEND_CHUNK:
                _sent_record(tenant=tenant, sent=sent)
                sent = []
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide the results
            pass
        _sent_record(tenant=tenant, sent=sent)
        _failed_record(tenant=tenant, failed=failed)
    released = messages_release(tenant=tenant, messages=untried) if untried else 0
    return len(messages) - len(failed) - len(untried), len(failed), released


@transaction.atomic
def _sent_record(*, tenant: Tenant, sent: list[tuple[Message, str, datetime]]) -> None:
    if not sent:
        return
    _update_rows("nurture_message", [str(m.pk) for m, _, _ in sent], {
        "status": ([MessageStatus.SENT.value for _ in sent], "varchar"),
        "smtp_message_id": ([smtp_id[:300] for _, smtp_id, _ in sent], "varchar"),
        "sent_at": ([at for _, _, at in sent], "timestamptz")}, id_type="uuid")
    last = max(at for _, _, at in sent)
    enrollment_ids = [m.enrollment_id for m, _, _ in sent]
    Enrollment.objects.unscoped().filter(tenant=tenant, pk__in=enrollment_ids).update(last_sent_at=last)
    _complete_finished(tenant=tenant, enrollment_ids=enrollment_ids, now=last)
    audit_bulk(events=[
        _event(tenant.pk, "nurture.email_sent", m.lead_id,
               {"sequence": m.sequence.name, "step": m.step_position, "subject": m.subject, "to": m.to_email,
                "message_id": str(m.pk), "enrollment_id": m.enrollment_id})
        for m, _, _ in sent])


@transaction.atomic
def _failed_record(*, tenant: Tenant, failed: list[tuple[Message, str]]) -> None:
    if not failed:
        return
    for message, error in failed:
        message.status, message.error = MessageStatus.FAILED, error[:500]
    Message.objects.unscoped().bulk_update([m for m, _ in failed], ["status", "error"])
    _complete_finished(tenant=tenant, enrollment_ids=[m.enrollment_id for m, _ in failed], now=timezone.now())
    audit_bulk(events=[
        _event(tenant.pk, "nurture.email_failed", m.lead_id,
               {"sequence": m.sequence.name, "step": m.step_position, "error": error[:300], "message_id": str(m.pk)})
        for m, error in failed])


def _complete_finished(*, tenant: Tenant, enrollment_ids, now: datetime) -> None:
    """Enrolments whose last step has gone (no next step) are completed."""
    finished = list(Enrollment.objects.unscoped().filter(
        tenant=tenant, pk__in=list(enrollment_ids), status=EnrollmentStatus.ACTIVE, next_position__isnull=True)
        .select_related("sequence"))
    if not finished:
        return
    Enrollment.objects.unscoped().filter(pk__in=[e.pk for e in finished]).update(
        status=EnrollmentStatus.COMPLETED, ended_at=now, next_due_at=None, updated_at=now)
    audit_bulk(events=[_event(tenant.pk, "nurture.completed", e.lead_id,
                              {"sequence": e.sequence.name, "enrollment_id": e.pk}) for e in finished])


@transaction.atomic
def messages_release(*, tenant: Tenant, messages: list[Message]) -> int:
    """Messages that never left (the server could not be reached): delete them and put their enrolments back
    on their step, due as when they were claimed, so the next minute tries again."""
    if not messages:
        return 0
    now = timezone.now()
    ids = [m.pk for m in messages]
    deleted, _ = Message.objects.unscoped().filter(tenant=tenant, pk__in=ids, status=MessageStatus.SENDING).delete()
    for message in messages:
        Enrollment.objects.unscoped().filter(tenant=tenant, pk=message.enrollment_id).update(
            next_position=message.step_position, next_due_at=message.claimed_at, messages_sent=F("messages_sent") - 1,
            updated_at=now)
    return deleted


def messages_fail_stale(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Messages left "sending" by a worker that died are marked failed (never re-sent: at most once)."""
    now = now or timezone.now()
    with transaction.atomic():
        stale = list(Message.objects.unscoped().select_for_update(skip_locked=True)
                     .filter(tenant=tenant, status=MessageStatus.SENDING, claimed_at__lt=now - STALE_AFTER)
                     .select_related("sequence"))
        if not stale:
            return 0
        _failed_record(tenant=tenant, failed=[
            (m, "The worker stopped while sending; not retried, so the lead never gets it twice.") for m in stale])
    return len(stale)
