"""Enrolments: who enters a sequence (audience rules or a person), pauses, and leaves it, and why.

All writes are set-based per tenant where they can be (the minute sweep enrols, exits, pauses and
resumes whole sets in one statement each) and audited under the Nurture Agent: every enrolment,
pause and exit is an audit event on the lead, so its reason is on the lead's timeline.

Rules (seed 000 "Nurture logic", seed 002 §5):
  * Eligible: an email, marketing consent, not suppressed, not closed (converted, unqualified,
    rejected for a non-nurture reason, archived), not already ready (score below the sequence's
    ready score), never in this sequence before, no live enrolment of the same kind, and (for
    automatic enrolment) no live automatic enrolment at all: the lowest-priority-number matching
    sequence wins.
  * Exits: replied (an `email_reply` signal), meeting booked (`meeting_booked` signal or a logged
    meeting), qualified or converted, closed, unsubscribed, hard bounce, consent withdrawn, ready
    (score reached the sequence's ready score: the lead is routed to a rep), a step condition, or
    stopped by hand.
  * A lead a rep is working (open, contacted within the tenant's `working_pause_days`, or with an
    open opportunity) is not mailed: its enrolment pauses, and resumes when that is no longer true.
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_bulk, audit_record
from leads.erasure import email_hash_sql, erased_emails
from leads.locks import lead_lock, lead_lock_refresh
from leads.models import OPEN_STATUSES, Lead, LeadStatus, Opportunity

from ..models import (
    LIVE_ENROLLMENT_STATUSES,
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    NurtureSettings,
    PauseReason,
    Sequence,
    SequenceStatus,
    Step,
)

NURTURE_AGENT = Actor.agent("Nurture Agent")
REPLY_SIGNALS = ("email_reply",)
MEETING_SIGNALS = ("meeting_booked",)
CLOSED_STATUSES = (LeadStatus.UNQUALIFIED, LeadStatus.REJECTED, LeadStatus.ARCHIVED)
DEFAULT_WORKING_PAUSE_DAYS = 14


def _open_statuses_sql() -> str:
    return ", ".join(f"'{s.value}'" for s in OPEN_STATUSES)


def _closed_statuses_sql(*, converted: bool = True) -> str:
    statuses = (*CLOSED_STATUSES, LeadStatus.CONVERTED) if converted else CLOSED_STATUSES
    return ", ".join(f"'{s.value}'" for s in statuses)


def _events(*, tenant_id: int, actor: Actor, action: str, rows, metadata) -> list[AuditEvent]:
    return [
        AuditEvent(tenant_id=tenant_id, actor_kind=actor.kind, actor_name=actor.name[:200], actor_user=actor.user,
                   action=action, object_type="leads.lead", object_id=str(row[1]), changes={},
                   metadata=metadata(row))
        for row in rows
    ]


def working_pause_days(*, tenant) -> int:
    value = NurtureSettings.objects.for_tenant(tenant).values_list("working_pause_days", flat=True).first()
    return DEFAULT_WORKING_PAUSE_DAYS if value is None else value


# --- manual enrolment and stop -----------------------------------------------------------------------


@transaction.atomic
def lead_enroll(*, lead: Lead, sequence: Sequence, actor: Actor, now: datetime | None = None) -> Enrollment:
    """Enrol one lead by hand. Refused with a field message when the lead cannot be mailed or already is in a
    sequence of this kind; enrolling again in the sequence it is already in returns that enrolment."""
    now = now or timezone.now()
    if sequence.tenant_id != lead.tenant_id:
        raise ValidationError({"sequence": ["Choose a sequence of this workspace."]})
    lead_lock_refresh(lead=lead)
    live = _live_of_kind(lead=lead, kind=sequence.kind)
    if live is not None:
        if live.sequence_id == sequence.pk:
            return live
        raise _same_kind_error(live)
    if sequence.status != SequenceStatus.ACTIVE:
        raise ValidationError({"sequence": ["Only an active sequence can take leads; activate it first."]})
    problems = lead_mailable_problems(lead=lead, lost_deal=sequence.audience_opportunity_lost)
    if problems:
        raise ValidationError({"lead": problems})
    first = Step.objects.for_tenant(sequence.tenant_id).filter(sequence=sequence).order_by("position").first()
    if first is None:
        raise ValidationError({"sequence": ["This sequence has no steps."]})
    try:
        with transaction.atomic():  # a savepoint: the minute sweep enrols without the lead lock
            enrollment = Enrollment.objects.create(
                tenant_id=lead.tenant_id, sequence=sequence, lead=lead, kind=sequence.kind, automatic=False,
                enrolled_by=actor.name[:200], enrolled_at=now, next_position=first.position,
                next_due_at=now + first.delay)
    except IntegrityError:
        live = _live_of_kind(lead=lead, kind=sequence.kind)
        if live is not None and live.sequence_id == sequence.pk:
            return live
        raise _same_kind_error(live) from None
    audit_record(tenant=lead.tenant, actor=actor, action="nurture.enrolled", obj=lead,
                 metadata={"sequence": sequence.name, "sequence_id": sequence.pk, "enrollment_id": enrollment.pk,
                           "automatic": False})
    return enrollment


def _live_of_kind(*, lead: Lead, kind: str) -> Enrollment | None:
    return (Enrollment.objects.for_tenant(lead.tenant_id).filter(lead=lead, kind=kind,
                                                 status__in=LIVE_ENROLLMENT_STATUSES)
            .select_related("sequence").first())


def _same_kind_error(live: Enrollment | None) -> ValidationError:
    name = f"“{live.sequence.name}”" if live is not None else "another sequence"
    return ValidationError({"sequence": [f"This lead is already in {name}, a sequence of the same kind; stop that "
                                         f"one first."]})


def lead_mailable_problems(*, lead: Lead, lost_deal: bool = False) -> list[str]:
    """Why nurture may not mail this lead (empty when it may). A converted lead is nurtured only by a
    lost-deal sequence (its opportunity was lost)."""
    from ..models import Suppression

    problems = []
    if not lead.email:
        problems.append("This lead has no email address.")
    elif Suppression.objects.for_tenant(lead.tenant_id).filter(email=lead.email.lower()).exists():
        problems.append("This address is on the suppression list (unsubscribed or bounced).")
    elif erased_emails(tenant=lead.tenant_id, emails=[lead.email]):
        problems.append("This person's data was erased at their request: they are never mailed.")
    if not lead.marketing_consent:
        problems.append("This lead has not given marketing consent.")
    if lead.status in CLOSED_STATUSES or (lead.status == LeadStatus.CONVERTED and not lost_deal):
        problems.append(f"A {lead.get_status_display().lower()} lead is not nurtured.")
    return problems


@transaction.atomic
def enrollment_stop(*, enrollment: Enrollment, actor: Actor, note: str = "", now: datetime | None = None,
                    expected_status: str | None = None) -> Enrollment:
    """Stop an enrolment by hand (reason "manual"); stopping an ended one changes nothing."""
    now = now or timezone.now()
    current = Enrollment.objects.for_tenant(enrollment.tenant_id).select_for_update().get(pk=enrollment.pk)
    if current.status not in LIVE_ENROLLMENT_STATUSES:
        return current
    if expected_status and current.status != expected_status:
        raise ValidationError({"enrollment": ["This enrolment changed meanwhile; reload the page."]})
    enrollments_exit(tenant_id=current.tenant_id, enrollment_ids=[current.pk], reason=ExitReason.MANUAL,
                     actor=actor, note=note, now=now)
    current.refresh_from_db()
    return current


def enrollments_exit(*, tenant_id: int, reason: str, actor: Actor, enrollment_ids=None, lead_ids=None,
                     note: str = "", now: datetime | None = None) -> list[tuple[int, object]]:
    """End the live enrolments given (by id, or all of the given leads) with one reason; returns
    [(enrollment_id, lead_id)] of those it ended. Audited on each lead. Idempotent."""
    now = now or timezone.now()
    queryset = Enrollment.objects.for_tenant(tenant_id).filter(status__in=LIVE_ENROLLMENT_STATUSES)
    if enrollment_ids is not None:
        queryset = queryset.filter(pk__in=list(enrollment_ids))
    if lead_ids is not None:
        queryset = queryset.filter(lead_id__in=list(lead_ids))
    with transaction.atomic():
        rows = list(queryset.select_for_update().values_list("pk", "lead_id", "sequence__name"))
        if not rows:
            return []
        Enrollment.objects.for_tenant(tenant_id).filter(pk__in=[r[0] for r in rows]).update(
            status=EnrollmentStatus.EXITED, exit_reason=reason, exit_note=note[:300], ended_at=now, next_due_at=None,
            updated_at=now)
        label = ExitReason(reason).label
        audit_bulk(events=_events(tenant_id=tenant_id, actor=actor, action="nurture.exited", rows=rows,
                                  metadata=lambda r: {"sequence": r[2], "enrollment_id": r[0], "reason": reason,
                                                      "label": label, "note": note[:300]}))
    return [(r[0], r[1]) for r in rows]


# --- the minute sweep: set-based enrol, exit, pause, resume -------------------------------------------


_ELIGIBLE = """
      l.email <> '' AND l.marketing_consent
  AND l.status NOT IN ({closed})
  AND lower(l.email) NOT IN (SELECT x.email FROM nurture_suppression x WHERE x.tenant_id = %(t)s)
  AND (NOT EXISTS (SELECT 1 FROM leads_erasedcontact ec WHERE ec.tenant_id = %(t)s)
       OR {erased_hash} NOT IN (SELECT ec.email_hash FROM leads_erasedcontact ec WHERE ec.tenant_id = %(t)s))
"""
# The suppression check is a NOT IN over the tenant's list (a hashed subplan: one pass over the list, whatever
# the number of leads), and what a lead is already in comes from one aggregate over the tenant's enrolments
# joined by hash: correlated NOT EXISTS here let the planner, misled by the audience filters' selectivity,
# pick a nested loop over every enrolment for every lead. People erased at their request (hashed) are checked the
# same way, and only when the tenant has erased anyone (an uncorrelated EXISTS, evaluated once).


def enrollments_auto_enroll(*, tenant, now: datetime | None = None, actor: Actor = NURTURE_AGENT) -> int:
    """Enrol every eligible lead in the first automatic sequence whose audience it matches; returns the count."""
    now = now or timezone.now()
    sql = f"""
    WITH first_steps AS (
        SELECT DISTINCT ON (st.sequence_id) st.sequence_id, st.position,
               make_interval(days => st.delay_days, hours => st.delay_hours) AS delay
          FROM nurture_step st WHERE st.tenant_id = %(t)s ORDER BY st.sequence_id, st.position
    ), taken AS MATERIALIZED (
        SELECT e.lead_id, array_agg(e.sequence_id) AS sequences,
               coalesce(array_agg(e.kind) FILTER (WHERE e.status IN ('active', 'paused')), '{{}}') AS live_kinds,
               coalesce(bool_or(e.automatic AND e.status IN ('active', 'paused')), false) AS live_auto
          FROM nurture_enrollment e WHERE e.tenant_id = %(t)s GROUP BY e.lead_id
    ), lead_pool AS MATERIALIZED (
        SELECT l.id, l.lead_class, l.band, l.stage, l.status, l.source, l.rejection_reason, l.score,
               coalesce(tk.sequences, '{{}}') AS sequences, coalesce(tk.live_kinds, '{{}}') AS live_kinds
          FROM leads_lead l
          LEFT JOIN taken tk ON tk.lead_id = l.id
         WHERE l.tenant_id = %(t)s AND {_ELIGIBLE.format(closed=_closed_statuses_sql(converted=False), erased_hash=email_hash_sql('l.email'))}
           AND NOT coalesce(tk.live_auto, false)
    ), candidates AS (
        SELECT DISTINCT ON (p.id) p.id AS lead_id, s.id AS sequence_id, s.kind, fs.position, fs.delay, s.name
          FROM lead_pool p
          JOIN nurture_sequence s ON s.tenant_id = %(t)s AND s.status = 'active' AND s.auto_enroll
          JOIN first_steps fs ON fs.sequence_id = s.id
         WHERE (p.status <> 'converted' OR s.audience_opportunity_lost)
           AND (cardinality(s.audience_classes) = 0 OR p.lead_class = ANY(s.audience_classes))
           AND (cardinality(s.audience_bands) = 0 OR p.band = ANY(s.audience_bands))
           AND (cardinality(s.audience_stages) = 0 OR p.stage = ANY(s.audience_stages))
           AND (cardinality(s.audience_statuses) = 0 OR p.status = ANY(s.audience_statuses))
           AND (cardinality(s.audience_sources) = 0 OR p.source = ANY(s.audience_sources))
           AND (cardinality(s.audience_rejection_reasons) = 0
                OR p.rejection_reason = ANY(s.audience_rejection_reasons))
           AND (NOT s.audience_opportunity_lost OR p.id IN (
                SELECT o.lead_id FROM leads_opportunity o WHERE o.tenant_id = %(t)s AND o.stage = 'lost'))
           AND (s.ready_score IS NULL OR p.score IS NULL OR p.score < s.ready_score)
           AND NOT s.id = ANY(p.sequences) AND NOT s.kind = ANY(p.live_kinds)
         ORDER BY p.id, s.priority, s.id
    )
    INSERT INTO nurture_enrollment (tenant_id, sequence_id, lead_id, kind, status, automatic, enrolled_by, enrolled_at,
                                    next_position, next_due_at, messages_sent, paused_reason, exit_reason, exit_note,
                                    updated_at)
    SELECT %(t)s, c.sequence_id, c.lead_id, c.kind, 'active', TRUE, %(by)s, %(now)s, c.position, %(now)s + c.delay, 0,
           '', '', '', %(now)s
      FROM candidates c
    ON CONFLICT DO NOTHING
    RETURNING id, lead_id, sequence_id
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"t": tenant.pk, "by": actor.name[:200], "now": now,
                             "pepper": settings.PRIVACY_HASH_PEPPER})
        rows = cursor.fetchall()
        if rows:
            names = dict(Sequence.objects.for_tenant(tenant).filter(pk__in={r[2] for r in rows})
                         .values_list("pk", "name"))
            audit_bulk(events=_events(tenant_id=tenant.pk, actor=actor, action="nurture.enrolled", rows=rows,
                                      metadata=lambda r: {"sequence": names.get(r[2], ""), "sequence_id": r[2],
                                                          "enrollment_id": r[0], "automatic": True}))
    return len(rows)


def enrollments_exit_sweep(*, tenant, now: datetime | None = None, actor: Actor = NURTURE_AGENT) -> dict[str, int]:
    """End every live enrolment whose lead replied, booked a meeting, qualified, converted, closed, opted out,
    bounced or became ready; ready leads are then routed. Returns {reason: count}."""
    now = now or timezone.now()
    sql = """
    WITH reasons AS (
        SELECT e.id, e.lead_id, s.name AS sequence,
          CASE
            WHEN s.audience_opportunity_lost AND EXISTS (
                SELECT 1 FROM leads_opportunity o WHERE o.tenant_id = e.tenant_id AND o.lead_id = e.lead_id
                   AND o.stage = 'won' AND o.updated_at >= e.enrolled_at) THEN 'converted'
            WHEN l.status = 'converted' AND NOT s.audience_opportunity_lost THEN 'converted'
            WHEN l.status = 'qualified'
              OR (l.stage IN ('sql', 'opportunity', 'customer') AND NOT s.audience_opportunity_lost) THEN 'qualified'
            WHEN l.status IN ('unqualified', 'rejected', 'archived') THEN 'closed'
            WHEN sup.reason = 'hard_bounce' THEN 'bounced'
            WHEN sup.reason IS NOT NULL THEN 'unsubscribed'
            WHEN NOT l.marketing_consent OR l.email = '' THEN 'no_consent'
            WHEN EXISTS (SELECT 1 FROM leads_signal sg WHERE sg.tenant_id = e.tenant_id AND sg.lead_id = e.lead_id
                            AND sg.type = ANY(%(reply)s) AND sg.occurred_at >= e.enrolled_at) THEN 'replied'
            WHEN EXISTS (SELECT 1 FROM leads_signal sg WHERE sg.tenant_id = e.tenant_id AND sg.lead_id = e.lead_id
                            AND sg.type = ANY(%(meeting)s) AND sg.occurred_at >= e.enrolled_at)
              OR EXISTS (SELECT 1 FROM leads_activity a WHERE a.tenant_id = e.tenant_id AND a.lead_id = e.lead_id
                            AND a.kind = 'meeting' AND a.occurred_at >= e.enrolled_at) THEN 'meeting_booked'
            WHEN s.ready_score IS NOT NULL AND l.score >= s.ready_score THEN 'ready'
          END AS reason
          FROM nurture_enrollment e
          JOIN leads_lead l ON l.tenant_id = e.tenant_id AND l.id = e.lead_id
          JOIN nurture_sequence s ON s.tenant_id = e.tenant_id AND s.id = e.sequence_id
          LEFT JOIN nurture_suppression sup ON sup.tenant_id = e.tenant_id AND sup.email = lower(l.email)
         WHERE e.tenant_id = %(t)s AND e.status IN ('active', 'paused')
    )
    UPDATE nurture_enrollment e
       SET status = 'exited', exit_reason = r.reason, ended_at = %(now)s, next_due_at = NULL, updated_at = %(now)s
      FROM reasons r
     WHERE e.id = r.id AND r.reason IS NOT NULL AND e.status IN ('active', 'paused')
    RETURNING e.id, e.lead_id, r.sequence, r.reason
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"t": tenant.pk, "now": now, "reply": list(REPLY_SIGNALS), "meeting": list(MEETING_SIGNALS)})
        rows = cursor.fetchall()
        if rows:
            audit_bulk(events=_events(tenant_id=tenant.pk, actor=actor, action="nurture.exited", rows=rows,
                                      metadata=lambda r: {"sequence": r[2], "enrollment_id": r[0], "reason": r[3],
                                                          "label": ExitReason(r[3]).label, "note": ""}))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[3]] = counts.get(row[3], 0) + 1
    for row in rows:
        if row[3] == ExitReason.READY:
            lead_ready_route(tenant=tenant, lead_id=row[1], actor=actor, now=now)
    return counts


def enrollments_pause_sweep(*, tenant, now: datetime | None = None, actor: Actor = NURTURE_AGENT) -> tuple[int, int]:
    """Pause active enrolments of leads a rep is working; resume those paused for that reason once it no longer
    holds (next email due now at the earliest). Returns (paused, resumed)."""
    now = now or timezone.now()
    days = working_pause_days(tenant=tenant)
    working = f"""(
        (l.status IN ({_open_statuses_sql()}) AND l.owner_id IS NOT NULL
         AND l.last_activity_at >= %(now)s - make_interval(days => %(days)s))
        OR EXISTS (SELECT 1 FROM leads_opportunity o WHERE o.tenant_id = l.tenant_id AND o.lead_id = l.id
                      AND o.stage NOT IN ('won', 'lost')))"""
    pause_sql = f"""
    UPDATE nurture_enrollment e SET status = 'paused', paused_reason = 'rep_working', paused_at = %(now)s,
           updated_at = %(now)s
      FROM leads_lead l, nurture_sequence s
     WHERE e.tenant_id = %(t)s AND e.status = 'active' AND l.tenant_id = e.tenant_id AND l.id = e.lead_id
       AND s.tenant_id = e.tenant_id AND s.id = e.sequence_id AND {working}
    RETURNING e.id, e.lead_id, s.name
    """
    resume_sql = f"""
    UPDATE nurture_enrollment e SET status = 'active', paused_reason = '', paused_at = NULL,
           next_due_at = GREATEST(e.next_due_at, %(now)s), updated_at = %(now)s
      FROM leads_lead l, nurture_sequence s
     WHERE e.tenant_id = %(t)s AND e.status = 'paused' AND e.paused_reason = 'rep_working'
       AND l.tenant_id = e.tenant_id AND l.id = e.lead_id AND s.tenant_id = e.tenant_id AND s.id = e.sequence_id
       AND NOT {working}
    RETURNING e.id, e.lead_id, s.name
    """
    params = {"t": tenant.pk, "now": now, "days": days}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(pause_sql, params)
        paused = cursor.fetchall()
        cursor.execute(resume_sql, params)
        resumed = cursor.fetchall()
        label = PauseReason.REP_WORKING.label
        audit_bulk(events=_events(tenant_id=tenant.pk, actor=actor, action="nurture.paused", rows=paused,
                                  metadata=lambda r: {"sequence": r[2], "enrollment_id": r[0], "reason": label})
                   + _events(tenant_id=tenant.pk, actor=actor, action="nurture.resumed", rows=resumed,
                             metadata=lambda r: {"sequence": r[2], "enrollment_id": r[0]}))
    return len(paused), len(resumed)


# --- readiness ---------------------------------------------------------------------------------------


def lead_readiness_check(*, tenant, lead_id, actor: Actor = NURTURE_AGENT, now: datetime | None = None) -> bool:
    """Re-evaluate one lead after its score changed: if it reached the ready score of a sequence it is in, it
    leaves (reason "ready") and is routed. Returns True when it left."""
    now = now or timezone.now()
    with transaction.atomic():
        try:
            lead = lead_lock(tenant=tenant, lead_id=lead_id)
        except Lead.DoesNotExist:
            return False
        if lead.score is None:
            return False
        ready_ids = list(
            Enrollment.objects.for_tenant(tenant).filter(lead_id=lead.pk, status__in=LIVE_ENROLLMENT_STATUSES,
                                                 sequence__ready_score__isnull=False,
                                                 sequence__ready_score__lte=lead.score).values_list("pk", flat=True))
        if not ready_ids:
            return False
        enrollments_exit(tenant_id=tenant.pk, enrollment_ids=ready_ids, reason=ExitReason.READY, actor=actor,
                         note=f"Score {lead.score}", now=now)
        lead_ready_route(tenant=tenant, lead_id=lead.pk, actor=actor, now=now)
    return True


def lead_ready_route(*, tenant, lead_id, actor: Actor, now: datetime) -> None:
    """Hand a lead that nurture made ready back to sales: a recycled (or "not now") lead, or a converted one
    whose deal was lost, reopens as new and is routed by the rules; a lead that is already open keeps its owner (routing's own band receiver decides
    about re-routing it), and an open lead nobody owns is routed."""
    from routing.models import Trigger
    from routing.services.assign import lead_route

    with transaction.atomic():
        lead = lead_lock(tenant=tenant, lead_id=lead_id)
        deals = Opportunity.objects.for_tenant(tenant).filter(lead=lead)
        lost_deal = (lead.status == LeadStatus.CONVERTED and not deals.exclude(stage__in=["won", "lost"]).exists()
                     and deals.filter(stage="lost").exists())
        if lead.status == LeadStatus.RECYCLED or lost_deal:
            Lead.objects.for_tenant(tenant).filter(pk=lead.pk).update(status=LeadStatus.NEW, updated_at=now)
            audit_record(tenant=tenant, actor=actor, action="lead.reopened", obj=lead,
                         changes={"status": [lead.status, LeadStatus.NEW]},
                         metadata={"reason": "Ready after nurture"})
            lead.refresh_from_db()
        elif lead.status not in OPEN_STATUSES or lead.owner_id is not None:
            return
        lead_route(lead=lead, actor=actor, trigger=Trigger.NURTURE_READY, now=now)
