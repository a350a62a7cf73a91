"""Checks of nurture sequences and steps before they are saved: field -> messages, empty when fine.

Used by the models' clean() (so `full_clean()` refuses bad input), by the admin forms (messages
beside the fields) and by the admin's Activate action. A step is checked on its own (templates,
delays, condition settings) and, when the positions of its sequence are known, against its
siblings (a "go to" target must be a later step that exists; the first step has no previous email
to test). A sequence is checked for its audience values against the tenant's data, its ready score
and, when it is (being made) active, for having at least one step.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable

from leads.models import LeadStage, LeadStatus
from scoring.models import LeadClass

from .models import SequenceStatus, StepCondition, WhenFalse
from .templating import template_problems

MAX_DELAY_DAYS = 365
PREVIOUS_EMAIL_CONDITIONS = frozenset({
    StepCondition.OPENED_PREVIOUS, StepCondition.CLICKED_PREVIOUS, StepCondition.NOT_OPENED_PREVIOUS,
    StepCondition.NOT_CLICKED_PREVIOUS,
})
NO_STEPS_MESSAGE = "An active sequence needs at least one step: add a step, or save the sequence as a draft."

# Instances whose siblings a form set checks already (the admin): their clean() skips the
# database look-up of sibling steps, which would not yet show the steps being saved with them.
SIBLINGS_CHECKED = "_nurture_siblings_checked"


def _add(problems: dict[str, list[str]], field: str, message: str) -> None:
    problems.setdefault(field, []).append(message)


def step_problems(step, *, positions: Collection[int] | None = None) -> dict[str, list[str]]:
    """Why `step` cannot be saved. `positions`: every step position of its sequence as it will be
    saved (this step's included); None skips the checks against the other steps."""
    problems: dict[str, list[str]] = {}
    for field in ("subject", "body"):
        for message in template_problems(getattr(step, field) or ""):
            _add(problems, field, message)
    if "\n" in (step.subject or "") or "\r" in (step.subject or ""):
        _add(problems, "subject", "A subject is one line: remove the line break.")
    for field, unit in (("delay_days", "days"), ("delay_hours", "hours")):
        value = getattr(step, field)
        if value is not None and value < 0:
            _add(problems, field, f"A delay cannot be negative ({value} {unit}).")
    if (step.delay_days or 0) + (step.delay_hours or 0) / 24 > MAX_DELAY_DAYS:
        _add(problems, "delay_days", f"A delay longer than {MAX_DELAY_DAYS} days is not allowed; a lead that "
                                     "waits that long needs another sequence.")
    if step.position is not None and step.position < 1:
        _add(problems, "position", "Positions start at 1.")

    if step.condition == StepCondition.SCORE_AT_LEAST:
        if step.condition_score is None:
            _add(problems, "condition_score", "Enter N for “Score is at least N” (0–100).")
        elif not 0 <= step.condition_score <= 100:
            _add(problems, "condition_score", "N is a score from 0 to 100.")

    if step.when_false == WhenFalse.GOTO:
        if step.goto_position is None:
            _add(problems, "goto_position", "Enter the position of the later step to go to.")
        elif step.position is not None and step.goto_position <= step.position:
            _add(problems, "goto_position", f"Go to a later step: a position after {step.position}.")
    elif step.goto_position is not None:
        _add(problems, "goto_position", "Only used with “Go to a later step”: clear it or choose that option.")
    if positions is not None:
        for field, messages in step_sibling_problems(step, positions=positions).items():
            problems.setdefault(field, []).extend(messages)
    return problems


def step_sibling_problems(step, *, positions: Collection[int]) -> dict[str, list[str]]:
    """The checks of `step` against the other steps of its sequence (`positions`: all of them, its own included)."""
    problems: dict[str, list[str]] = {}
    if step.position is None:
        return problems
    if (step.when_false == WhenFalse.GOTO and step.goto_position is not None and step.goto_position > step.position
            and step.goto_position not in positions):
        _add(problems, "goto_position", f"There is no step at position {step.goto_position} in this sequence.")
    if step.condition in PREVIOUS_EMAIL_CONDITIONS and not any(p < step.position for p in positions):
        _add(problems, "condition", "The first step has no previous email to test: choose “Always send” or "
                                    "“Score is at least N”.")
    return problems


def _unknown(values: Iterable[str], allowed: Collection[str]) -> list[str]:
    return [value for value in values if value not in allowed]


def _choice_message(kind: str, unknown: list[str], allowed: Iterable[str]) -> str:
    shown = ", ".join(f"“{v}”" for v in unknown)
    options = ", ".join(allowed) or "none defined"
    return f"Unknown {kind} {shown}; choose from: {options}."


def published_band_keys(*, tenant) -> list[str]:
    """Band keys of the tenant's published scoring model, lowest band first."""
    from scoring.models import ModelStatus, ScoreBand

    return list(ScoreBand.objects.for_tenant(tenant).filter(model__status=ModelStatus.PUBLISHED)
                .order_by("min_score").values_list("key", flat=True))


def published_band_choices(*, tenant) -> list[tuple[str, str]]:
    """(key, "Name (min–max)") of the bands of the tenant's published scoring model, lowest first."""
    from scoring.models import ModelStatus, ScoreBand

    rows = (ScoreBand.objects.for_tenant(tenant).filter(model__status=ModelStatus.PUBLISHED)
            .order_by("min_score").values_list("key", "name", "min_score", "max_score"))
    return [(key, f"{name} ({low}–{high})") for key, name, low, high in rows]


def rejection_reason_codes(*, tenant) -> list[str]:
    from routing.models import RejectionReason

    return list(RejectionReason.objects.for_tenant(tenant).order_by("position", "id")
                .values_list("code", flat=True))


def sequence_audience_problems(sequence) -> dict[str, list[str]]:
    """Audience values, ready score and name of `sequence` checked against its tenant."""
    problems: dict[str, list[str]] = {}
    fixed = (("audience_classes", "lead class", LeadClass.values), ("audience_stages", "stage", LeadStage.values),
             ("audience_statuses", "status", LeadStatus.values))
    for field, kind, allowed in fixed:
        unknown = _unknown(getattr(sequence, field) or [], allowed)
        if unknown:
            _add(problems, field, _choice_message(kind, unknown, allowed))
    if sequence.tenant_id is not None:
        if sequence.audience_bands:
            keys = published_band_keys(tenant=sequence.tenant_id)
            unknown = _unknown(sequence.audience_bands, keys)
            if unknown:
                _add(problems, "audience_bands",
                     _choice_message("score band", unknown, keys) + " (bands of the published scoring model)")
        if sequence.audience_rejection_reasons:
            codes = rejection_reason_codes(tenant=sequence.tenant_id)
            unknown = _unknown(sequence.audience_rejection_reasons, codes)
            if unknown:
                _add(problems, "audience_rejection_reasons", _choice_message("rejection reason", unknown, codes))
        if sequence.name:
            from .models import Sequence

            taken = Sequence.objects.for_tenant(sequence.tenant_id).filter(name__iexact=sequence.name.strip())
            if sequence.pk is not None:
                taken = taken.exclude(pk=sequence.pk)
            if taken.exists():
                _add(problems, "name", "A sequence with this name already exists.")
    for field in ("audience_sources",):
        if any(not (value or "").strip() for value in getattr(sequence, field) or []):
            _add(problems, field, "Remove the empty entry.")
    if sequence.ready_score is not None and not 0 <= sequence.ready_score <= 100:
        _add(problems, "ready_score", "The ready score is a score from 0 to 100 (empty: never).")
    if sequence.priority is not None and sequence.priority < 0:
        _add(problems, "priority", "The priority cannot be negative.")
    return problems


def sequence_problems(sequence, steps: Iterable | None) -> dict[str, list[str]]:
    """Why `sequence` cannot be saved (or activated) with `steps` (Step instances as they will be saved).
    `steps=None` skips the step checks (the admin's inline form set makes them itself)."""
    problems = sequence_audience_problems(sequence)
    if steps is None:
        return problems
    steps = list(steps)
    if sequence.status == SequenceStatus.ACTIVE and not steps:
        _add(problems, "status", NO_STEPS_MESSAGE)
    positions = [s.position for s in steps]
    if len(set(positions)) != len(positions):
        _add(problems, "steps", "Two steps share a position: give every step its own position.")
    for step in sorted(steps, key=lambda s: s.position or 0):
        for field, messages in step_problems(step, positions=positions).items():
            for message in messages:
                _add(problems, "steps", f"Step {step.position} ({step._meta.get_field(field).verbose_name}): {message}")
    return problems


def sequence_steps(sequence) -> list:
    """The saved steps of `sequence` (none for an unsaved one)."""
    from .models import Step

    if sequence.pk is None:
        return []
    return list(Step.objects.for_tenant(sequence.tenant_id).filter(sequence_id=sequence.pk)
                .order_by("position"))
