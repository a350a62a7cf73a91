"""Nurture test helpers: factories (sequences with steps, settings with a postal address, leads that may be mailed) and sent messages, scored leads and expired link tokens for the tracking tests."""
from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import factory
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leads.models import Lead
from nurture.models import (
    Enrollment,
    Message,
    MessageStatus,
    NurtureSettings,
    Sequence,
    SequenceKind,
    SequenceStatus,
    Step,
)
from scoring.services import leads_score, scoring_default_model_create
from tests.support.factories import LeadFactory, TenantOwnedFactory


class NurtureSettingsFactory(TenantOwnedFactory):
    class Meta:
        model = NurtureSettings
        django_get_or_create = ("tenant",)

    from_name = "Acme Marketing"
    from_email = "marketing@acme.example"
    reply_to = "hello@acme.example"
    postal_address = "Acme Corp, 1 Market Street, Springfield 12345"
    max_per_minute = 1000


class SequenceFactory(TenantOwnedFactory):
    class Meta:
        model = Sequence

    name = factory.Sequence(lambda n: f"Sequence {n}")
    goal = "Qualify to MQL"
    kind = SequenceKind.NEW_LEAD
    status = SequenceStatus.ACTIVE
    auto_enroll = True
    priority = 100
    audience_classes = factory.LazyFunction(lambda: ["nurture", "future_fit"])
    ready_score = 41


class StepFactory(TenantOwnedFactory):
    class Meta:
        model = Step

    sequence = factory.SubFactory(SequenceFactory)
    tenant = factory.SelfAttribute("sequence.tenant")
    position = factory.Sequence(lambda n: n + 1)
    delay_days = 0
    delay_hours = 0
    subject = "Hello {{ first_name|default:'there' }}"
    body = "Hi {{ first_name|default:'there' }},\n\nRead our guide: https://acme.example/guide\n\n{{ owner_name }}"


def sequence_with_steps(*, tenant, steps: int = 3, delays_days=(0, 3, 7, 12, 18), **kwargs) -> Sequence:
    """An active sequence with `steps` steps, delayed by `delays_days`."""
    sequence = SequenceFactory(tenant=tenant, **kwargs)
    for position in range(1, steps + 1):
        StepFactory(sequence=sequence, tenant=tenant, position=position, delay_days=delays_days[position - 1],
                    subject=f"Step {position} for {{{{ first_name|default:'there' }}}}")
    return sequence


class NurtureLeadFactory(LeadFactory):
    """A lead nurture may mail: consent, nurture class, raw stage, score below MQL."""

    marketing_consent = True
    lead_class = "nurture"
    band = "warm"
    score = 30


GUIDE = "https://acme.example/guide?utm_source=nurture"


def sent_message(*, tenant, lead=None, sequence=None, position: int = 1, **fields) -> Message:
    """A message of step `position` sent to `lead` (a new mailable lead by default), with its live enrolment."""
    now = timezone.now()
    sequence = sequence or sequence_with_steps(tenant=tenant, steps=3)
    lead = lead or NurtureLeadFactory(tenant=tenant)
    enrollment = Enrollment.objects.unscoped().filter(tenant=tenant, lead=lead, sequence=sequence).first()
    if enrollment is None:
        enrollment = Enrollment.objects.unscoped().create(
            tenant=tenant, sequence=sequence, lead=lead, kind=sequence.kind, next_position=position + 1,
            next_due_at=now + timedelta(days=3), last_sent_at=now, messages_sent=position)
    step = Step.objects.unscoped().get(tenant=tenant, sequence=sequence, position=position)
    values = {"subject": f"Step {position} for {lead.first_name}", "body_text": f"Hi!\n\nRead {GUIDE}",
              "status": MessageStatus.SENT, "sent_at": now, "to_email": lead.email,
              "smtp_message_id": f"<msg-{position}-{lead.pk.hex[:8]}@acme.example>"}
    values.update(fields)
    return Message.objects.unscoped().create(tenant=tenant, enrollment=enrollment, lead=lead, sequence=sequence,
                                             step=step, step_position=position, **values)


def scored_lead(tenant, **fields) -> Lead:
    """A mailable lead scored by the tenant's default (seed 002) model: 30 points of fit (target industry,
    100-499 employees), active today (no inactivity penalty), far from MQL (41) even after a click."""
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    fields = {"industry": "Software", "company_size": 150, **fields}
    lead = NurtureLeadFactory(tenant=tenant, last_activity_at=timezone.now(), **fields)
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="manual")
    return Lead.objects.unscoped().get(pk=lead.pk)


def old_token(make, *args, days: int = 400) -> str:
    """A token signed `days` ago (links of an old email)."""
    with mock.patch("django.core.signing.time.time", return_value=time.time() - days * 86400):
        return make(*args)
