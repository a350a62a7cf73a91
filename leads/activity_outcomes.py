"""The call/email/meeting outcome taxonomy: its defaults, seeding them for a tenant, and reading an outcome.

Every tenant starts with the defaults below (the `tenant_provisioned` receiver; migration
`leads.0007_activity_outcomes` for tenants that existed before) and edits them in the admin. Whether an
activity is *contact* (the rep reached the person: the first-contact SLA clock stops) or an *attempt*
(counted towards recycling an unresponsive lead) is decided by its outcome's `counts_as_contact`. An
activity logged without an outcome is judged by its kind's default outcome: a call is an attempt
("no outcome" is not a conversation), an email was sent (an attempt unless the tenant makes "Sent" count),
a meeting was held (contact).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from .models import ActivityKind, ActivityOutcome, OutcomeKind


@dataclass(frozen=True)
class OutcomeDefault:
    code: str
    label: str
    kind: str
    counts_as_contact: bool


DEFAULT_ACTIVITY_OUTCOMES: tuple[OutcomeDefault, ...] = (
    OutcomeDefault("connected", "Connected", OutcomeKind.CALL, True),
    OutcomeDefault("voicemail", "Left voicemail", OutcomeKind.CALL, False),
    OutcomeDefault("no_answer", "No answer", OutcomeKind.CALL, False),
    OutcomeDefault("busy", "Busy", OutcomeKind.CALL, False),
    OutcomeDefault("wrong_number", "Wrong number", OutcomeKind.CALL, False),
    OutcomeDefault("sent", "Sent", OutcomeKind.EMAIL, False),
    OutcomeDefault("replied", "Replied", OutcomeKind.EMAIL, True),
    OutcomeDefault("bounced", "Bounced", OutcomeKind.EMAIL, False),
    OutcomeDefault("held", "Held", OutcomeKind.MEETING, True),
    OutcomeDefault("no_show", "No-show", OutcomeKind.MEETING, False),
    OutcomeDefault("meeting_booked", "Meeting booked", OutcomeKind.ANY, True),
    OutcomeDefault("not_interested", "Not interested", OutcomeKind.ANY, True),
)
# What an activity logged without an outcome stands for (notes are never contact).
BLANK_OUTCOME_MEANS = {ActivityKind.CALL: "no_answer", ActivityKind.EMAIL: "sent", ActivityKind.MEETING: "held"}
_BLANK_FALLBACK = {ActivityKind.CALL: False, ActivityKind.EMAIL: False, ActivityKind.MEETING: True}


def activity_outcomes_seed(*, tenant_id: int, model=ActivityOutcome) -> list[str]:
    """Create the default outcomes the tenant lacks (by code); returns the codes created. Idempotent, and a
    tenant's own edits (labels, switched-off outcomes) are kept. `model` is the historical model in a migration."""
    existing = set(model._base_manager.filter(tenant_id=tenant_id).values_list("code", flat=True))
    missing = [(position, d) for position, d in enumerate(DEFAULT_ACTIVITY_OUTCOMES, start=1) if d.code not in existing]
    model._base_manager.bulk_create(
        [model(tenant_id=tenant_id, code=d.code, label=d.label, kind=d.kind, counts_as_contact=d.counts_as_contact,
               position=position * 10) for position, d in missing],
        ignore_conflicts=True)
    return [d.code for _, d in missing]


def activity_outcomes_for(*, tenant_id: int, active_only: bool = True) -> list[ActivityOutcome]:
    """The tenant's outcomes in menu order (one query). A tenant that has none at all (created without
    provisioning) works with the defaults, unsaved, rather than without a taxonomy."""
    rows = list(ActivityOutcome.objects.for_tenant(tenant_id).order_by("position", "id"))
    if not rows:
        rows = [ActivityOutcome(tenant_id=tenant_id, code=d.code, label=d.label, kind=d.kind,
                                counts_as_contact=d.counts_as_contact, position=i * 10)
                for i, d in enumerate(DEFAULT_ACTIVITY_OUTCOMES, start=1)]
    return [row for row in rows if row.is_active] if active_only else rows


def outcome_code_normalise(value: str) -> str:
    """"No answer", "no-answer" and "NO_ANSWER" are the same code."""
    return re.sub(r"[\s\-]+", "_", (value or "").strip().lower())


def activity_outcome_resolve(*, outcomes: list[ActivityOutcome], kind: str, value: str) -> ActivityOutcome | None:
    """The active outcome `value` names (its code or its label) among `outcomes`, fitting the activity `kind`;
    None for a blank value. A ValidationError on `outcome` lists the choices otherwise."""
    wanted = outcome_code_normalise(value)
    if not wanted:
        return None
    fitting = [o for o in outcomes if o.is_active and o.fits(kind)]
    for outcome in fitting:
        if wanted in (outcome.code, outcome_code_normalise(outcome.label)):
            return outcome
    other = next((o for o in outcomes if o.is_active and wanted in (o.code, outcome_code_normalise(o.label))), None)
    choices = ", ".join(o.code for o in fitting)
    article = "an" if kind[:1] in "aeiou" else "a"
    if other is not None:
        message = f"“{other.label}” is not an outcome of {article} {kind}." + (
            f" Choose one of: {choices}." if choices else "")
    elif choices:
        message = f"Unknown outcome “{value.strip()[:64]}”. Choose one of: {choices}."
    else:
        message = f"{article.capitalize()} {kind} takes no outcome."
    raise ValidationError({"outcome": [message]})


def activity_counts_as_contact(*, outcomes: list[ActivityOutcome], kind: str, outcome: ActivityOutcome | None) -> bool:
    """Whether a call/email/meeting with `outcome` (None: none given) is contact rather than an attempt."""
    if kind not in BLANK_OUTCOME_MEANS:
        return False
    if outcome is None:
        default = next((o for o in outcomes if o.code == BLANK_OUTCOME_MEANS[kind] and o.fits(kind)), None)
        return default.counts_as_contact if default is not None else _BLANK_FALLBACK[kind]
    return outcome.counts_as_contact


def outcome_labels(*, tenant_id: int) -> dict[str, str]:
    """{code: label} of every outcome of the tenant, inactive ones included (timelines of older activities)."""
    return {o.code: o.label for o in activity_outcomes_for(tenant_id=tenant_id, active_only=False)}
