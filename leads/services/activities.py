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
from leads.models import Activity, ActivityKind, Lead
from leads.normalize import text_clean


@transaction.atomic
def activity_log(
    *, lead: Lead, kind: str, actor: Actor, subject: str = "", body: str = "", outcome: str = "",
    occurred_at: dt.datetime | None = None,
) -> tuple[Activity, bool]:
    """Record an activity on the lead and move its `last_activity_at`; returns (activity, created).

    A retried request that sends the same `occurred_at` finds the activity it already logged
    (same author, kind, time, subject, body and outcome) instead of logging it twice.
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

    # One writer per lead at a time: makes the retry check below reliable.
    Lead.objects.unscoped().select_for_update().filter(tenant_id=lead.tenant_id, pk=lead.pk).values_list("pk").get()
    fields = {"kind": kind, "subject": subject, "body": body, "outcome": outcome}
    if occurred_at is not None:
        existing = Activity.objects.unscoped().filter(
            tenant_id=lead.tenant_id, lead=lead, actor_id=actor.user_id, occurred_at=occurred_at, **fields
        ).first()
        if existing is not None:
            return existing, False
    activity = Activity.objects.unscoped().create(
        tenant_id=lead.tenant_id, lead=lead, actor=actor.user, occurred_at=occurred_at or now, **fields
    )
    activity_at = min(activity.occurred_at, now)
    Lead.objects.unscoped().filter(tenant_id=lead.tenant_id, pk=lead.pk).update(
        last_activity_at=Greatest(Coalesce(F("last_activity_at"), activity_at), activity_at), updated_at=now,
    )
    audit_record(
        tenant=lead.tenant, actor=actor, action="lead.activity_logged", obj=lead,
        metadata={"activity_id": activity.pk, "kind": kind, "subject": subject, "outcome": outcome,
                  "occurred_at": activity.occurred_at},
    )
    return activity, True
