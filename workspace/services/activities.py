"""Logging what a rep did with a lead: a call, an email, a meeting or a note."""
from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leads.activity_outcomes import (
    activity_counts_as_contact,
    activity_outcome_resolve,
    activity_outcomes_for,
)
from leads.locks import UNSET, lead_lock
from leads.models import OPEN_STATUSES, Activity, ActivityKind, Lead, LeadStatus
from leads.normalize import text_clean
from routing.models import SlaKind
from routing.services.aging import lead_recycle, routing_settings_for
from routing.services.sla_clocks import SLA_AGENT, sla_clock_stop

CONTACT_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})


@transaction.atomic
def activity_log(
    *, lead: Lead, kind: str, actor: Actor, subject: str = "", body: str = "", outcome: str = "",
    occurred_at: dt.datetime | None = None, expected_owner_id=UNSET,
) -> tuple[Activity, bool]:
    """Record an activity on the lead and move its `last_activity_at`; returns (activity, created).

    `outcome` is a code (or label) of the tenant's outcome taxonomy that fits the kind, stored as its
    code; blank is allowed; anything else is a ValidationError on `outcome`. A person's call, email or
    meeting moves a new lead to contacted. Only contact (an outcome that counts as contact, e.g.
    connected, replied, meeting booked; a meeting without an outcome) sets `first_contacted_at`, stops
    the first-contact SLA clock and resets the unanswered count; any other (no answer, voicemail, a call
    without an outcome, an email sent) is an attempt that counts towards recycling the lead to nurture
    while the clock keeps running (see `leads.activity_outcomes`). Any activity clears the aging flags.

    A retried request that sends the same `occurred_at` finds the activity it already logged
    (same author, kind, time, subject, body and outcome) instead of logging it twice. A caller that
    passes `expected_owner_id` (the owner it saw) is refused if the lead changed hands meanwhile.
    """
    if kind not in ActivityKind.values:
        raise ValidationError({"kind": [f"Choose one of {', '.join(ActivityKind.values)}."]})
    now = timezone.now()
    if occurred_at is not None and occurred_at > now + timedelta(seconds=settings.SIGNALS_MAX_FUTURE_SKEW_SECONDS):
        raise ValidationError({"occurred_at": ["Log activities that have happened; this time is in the future."]})
    try:
        subject, outcome = text_clean(subject), text_clean(outcome)
        body = text_clean(body, multiline=True)
    except ValidationError as exc:
        raise ValidationError({"body": exc.messages}) from exc
    if kind == ActivityKind.NOTE and not (subject or body):
        raise ValidationError({"body": ["A note needs a subject or a body."]})
    outcomes = activity_outcomes_for(tenant_id=lead.tenant_id)
    chosen = activity_outcome_resolve(outcomes=outcomes, kind=kind, value=outcome)
    outcome = chosen.code if chosen is not None else ""

    # One writer per lead at a time: makes the retry check below reliable.
    locked = lead_lock(tenant=lead.tenant_id, lead_id=lead.pk, expected_owner_id=expected_owner_id)
    status, first_contacted_at, attempts = locked.status, locked.first_contacted_at, locked.contact_attempts
    fields = {"kind": kind, "subject": subject, "body": body, "outcome": outcome}
    if occurred_at is not None:
        existing = Activity.objects.for_tenant(lead.tenant_id).filter(lead=lead, actor_id=actor.user_id, occurred_at=occurred_at, **fields).first()
        if existing is not None:
            return existing, False
    activity = Activity.objects.create(
        tenant_id=lead.tenant_id, lead=lead, actor=actor.user, occurred_at=occurred_at or now, **fields
    )
    activity_at = min(activity.occurred_at, now)
    # A person's call, email or meeting works the lead; only one whose outcome counts as contact is the
    # first contact that stops the SLA clock, the others are attempts ("N attempts with no response"),
    # which contact resets. Any activity ends the untouched spell (aging flags). The row is locked, so
    # the values read above are current.
    is_work = kind in CONTACT_KINDS and actor.user is not None
    is_contact = is_work and activity_counts_as_contact(outcomes=outcomes, kind=kind, outcome=chosen)
    no_response = is_work and not is_contact
    updates = {"last_activity_at": Greatest(Coalesce(F("last_activity_at"), activity_at), activity_at),
               "updated_at": now, "aging_flagged_at": None, "aging_alerted_at": None}
    changes = {}
    if is_work:
        if is_contact and first_contacted_at is None:
            updates["first_contacted_at"] = activity_at
            changes["first_contacted_at"] = [None, activity_at]
        if status == LeadStatus.NEW:
            updates["status"] = LeadStatus.CONTACTED
            changes["status"] = [status, LeadStatus.CONTACTED]
        new_attempts = attempts + 1 if no_response else 0
        if new_attempts != attempts:
            updates["contact_attempts"] = new_attempts
            changes["contact_attempts"] = [attempts, new_attempts]
            attempts = new_attempts
    Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk).update(**updates)
    audit_record(
        tenant=lead.tenant, actor=actor, action="lead.activity_logged", obj=lead, changes=changes,
        metadata={"activity_id": activity.pk, "kind": kind, "subject": subject, "outcome": outcome,
                  "counts_as_contact": is_contact, "occurred_at": activity.occurred_at},
    )
    if is_contact:
        sla_clock_stop(lead=lead, reason="first_contact", kind=SlaKind.FIRST_CONTACT, actor=actor, now=now)
    if no_response:
        threshold = routing_settings_for(tenant=lead.tenant).recycle_after_attempts
        if threshold and attempts >= threshold and updates.get("status", status) in OPEN_STATUSES:
            lead_recycle(lead=lead, actor=SLA_AGENT, now=now, reason=f"{attempts} contact attempts without a response")
    return activity, True
