"""Factories of nurture objects: a sequence with steps, settings with a postal address, leads that may be mailed."""
from __future__ import annotations

import factory

from nurture.models import NurtureSettings, Sequence, SequenceKind, SequenceStatus, Step

from ..factories import LeadFactory, TenantOwnedFactory


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
