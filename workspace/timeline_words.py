"""The lead timeline in words: one sentence per thing that happened, with people's names and roles (no queries:
`workspace.selectors.lead_timeline` reads every source in bulk and hands the rows and the names over)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from leads.models import Lead, LeadStage
from leads.signal_catalog import builtin_signal
from scoring.models import ScoreCause

ROLE_WORDS = {"sdr": "SDR", "ae": "AE", "manager": "manager", "marketing_ops": "marketing ops", "admin": "admin"}
STAGE_LABELS = dict(LeadStage.choices)
CAUSE_LABELS = dict(ScoreCause.choices)
SLA_STOP_WORDS = {"first_contact": "first contact", "accepted": "accepted", "converted": "converted",
                  "rejected": "rejected", "disqualified": "disqualified", "recycled": "recycled to nurture",
                  "closed": "closed"}
KIND_LABELS = {"touch": "form", "signal": "signal", "score": "score", "activity": "activity", "assignment": "owner",
               "email": "email", "stage": "stage", "audit": "change", "sla": "SLA", "nurture": "nurture"}
SHORT = 140  # a reason longer than this goes under the sentence instead of into it


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: `title` is the sentence; `detail` free text (notes, reasons: shown whole,
    wrapped); `lines` further facts, one per line (each edited field); `actor` who did it."""

    at: dt.datetime
    kind: str
    title: str
    detail: str = ""
    actor: str = ""
    lines: tuple[str, ...] = field(default_factory=tuple)
    pair_id: int | None = None  # a merge of a possible-duplicate pair into this lead (the page offers its undo)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass
class Names:
    """People by user id: name and role word in this tenant ("" for someone who left); accounts by id."""

    people: dict[int, tuple[str, str]]
    accounts: dict[int, str]

    def person(self, user_id, *, role: bool = False, fallback: str = "someone") -> str:
        if user_id is None:
            return fallback
        name, role_word = self.people.get(int(user_id), (f"user #{user_id}", ""))
        return f"{name} ({role_word})" if role and role_word else name


def user_name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def actor_phrase(*, kind: str, name: str, user_id, names: Names) -> str:
    """"Maria Lopez (manager)", "the Routing Agent", "API key Zapier (lm_ab12)", "the system"."""
    if kind == "user" and user_id is not None:
        return names.person(user_id, role=True)
    if kind == "agent":
        return f"the {name}"
    if kind == "system":
        return "the system"
    return name or "someone"


def _quoted(value) -> str:
    return "—" if value in (None, "", []) else f"‘{value}’"


def band_word(band: str) -> str:
    band = band or ""
    return band.upper() if band.lower() in ("mql", "sql", "sal") else band.replace("_", " ").title()


def stage_word(stage: str) -> str:
    return str(STAGE_LABELS.get(stage, stage or "—"))


def signal_label(type_name: str, custom_labels: dict[str, str]) -> str:
    builtin = builtin_signal(type_name)
    if builtin is not None:
        return builtin.label
    return custom_labels.get(type_name) or type_name.replace("_", " ").capitalize()


def _field_label(name: str) -> str:
    try:
        return str(Lead._meta.get_field(name).verbose_name).capitalize()
    except Exception:  # noqa: BLE001 - FieldDoesNotExist: an attribute or a removed field
        return name.replace("_", " ").replace(".", ": ").capitalize()


def field_change(name: str, before, after, names: Names) -> str:
    """"Job title changed from ‘Intern’ to ‘VP Sales’" (ids of accounts and people shown as names)."""
    label = _field_label(name)
    if name == "account":
        before, after = (names.accounts.get(v, f"#{v}") if v else v for v in (before, after))
    elif name == "owner":
        before, after = (names.person(v) if v else v for v in (before, after))
    elif isinstance(before, bool) or isinstance(after, bool):
        return f"{label}: {'yes' if after else 'no'}"
    if before in (None, "", []):
        return f"{label} set to {_quoted(after)}"
    if after in (None, "", []):
        return f"{label} cleared (was {_quoted(before)})"
    return f"{label} changed from {_quoted(before)} to {_quoted(after)}"


def assignment_entry(assignment, names: Names) -> TimelineEntry:
    """"Assigned to Sam Rivera by the Routing Agent: rule ‘Round-robin among available SDRs’", "Reassigned from
    Dana Reyes to Sam Rivera by Maria Lopez (manager): out sick", "Handed off to Ana Ruiz (AE) by …"."""
    actor = actor_phrase(kind=assignment.actor_kind, name=assignment.actor_name, user_id=assignment.actor_user_id,
                         names=names)
    to = names.person(assignment.owner_id, role=assignment.trigger == "handoff")
    before = assignment.previous_owner_id
    if assignment.owner_id is None:
        verb = "Sent back to marketing" if assignment.trigger == "recycle" else "Moved to Unassigned"
    elif assignment.trigger == "handoff":
        verb = f"Handed off to {to}"
    elif before is not None and before != assignment.owner_id:
        verb = f"Reassigned from {names.person(before)} to {to}"
    else:
        verb = f"Assigned to {to}"
    title, detail = f"{verb} by {actor}", assignment.reason or ""
    if assignment.trigger == "handoff":
        detail = detail.removeprefix("SDR → AE handoff: ")
    if assignment.rule_name:
        title += f": rule ‘{assignment.rule_name}’"
    elif detail and len(detail) <= SHORT:
        title, detail = f"{title}: {detail}", ""
    return TimelineEntry(assignment.at, "assignment", title, detail, assignment.actor_name)


def score_entry(change, signals: list[str]) -> TimelineEntry:
    """"Score 50 → 70 (Warm → Hot): new signal “Pricing page view”"."""
    bands = ""
    if change.new_band and change.old_band != change.new_band:
        bands = f" ({band_word(change.old_band)} → {band_word(change.new_band)})" if change.old_band \
            else f" ({band_word(change.new_band)})"
    score = f"Score {change.old_score} → {change.new_score}" if change.old_score is not None \
        else f"Scored {change.new_score}"
    cause = str(CAUSE_LABELS.get(change.cause, change.cause)).lower()
    if change.cause == ScoreCause.SIGNAL and signals:
        cause = f"new signal{'s' if len(signals) > 1 else ''} " + ", ".join(f"“{s}”" for s in signals)
    return TimelineEntry(change.at, "score", f"{score}{bands}: {cause}", actor="Scoring Agent")


def outcome_sentence(meta: dict, actor: str) -> str:
    """"Closed won by Ana Ruiz (AE): 12,000.00 EUR", "Closed lost by API key CRM (lm_ab12): Chose a competitor"."""
    result = meta.get("result")
    verb = {"won": "Closed won", "lost": "Closed lost"}.get(result, "Disqualified (deal outcome)")
    try:
        money = f"{float(meta['amount']):,.2f} {meta.get('currency') or ''}".strip() if meta.get("amount") else ""
    except (TypeError, ValueError):
        money = ""
    reason = meta.get("lost_reason_label") or meta.get("reason") or ""
    what = money if result == "won" else (reason if len(reason) <= SHORT else "")
    return f"{verb} by {actor}" + (f": {what}" if what else "")


def _action_sentence(event, actor: str, meta: dict) -> tuple[str, str]:
    """(sentence, free-text detail) of a lead action recorded in the audit trail."""
    action = event.action
    if action == "lead.accepted":
        return f"Accepted by {actor}", ""
    if action == "lead.qualified":
        return f"Qualified (BANT) by {actor}", ""
    if action == "lead.converted":
        name = meta.get("opportunity_name")
        return f"Converted by {actor}" + (f" into the opportunity “{name}”" if name else ""), ""
    if action in ("lead.rejected", "lead.disqualified"):
        verb = "Rejected" if action == "lead.rejected" else "Disqualified"
        label = meta.get("label") or meta.get("reason") or ""
        return f"{verb} by {actor}" + (f": {label}" if label else ""), meta.get("note") or ""
    if action == "lead.outcome":
        return outcome_sentence(meta, actor), meta.get("reason") if len(meta.get("reason") or "") > SHORT else ""
    if action == "lead.recycled":
        reason = meta.get("reason") or ""
        return f"Recycled to nurture by {actor}" + (f": {reason}" if reason and len(reason) <= SHORT else ""), \
            reason if len(reason) > SHORT else ""
    if action == "lead.reopened":
        return f"Reopened by {actor}" + (f": {meta['reason']}" if meta.get("reason") else ""), ""
    if action == "lead.updated":
        return f"Details edited by {actor}", meta.get("reason") or ""
    if action == "lead.merged":
        return "Details filled in by a new submission", ""
    if action == "lead.duplicate_merged":
        return f"A duplicate lead was merged into this one by {actor}: its history is here now", ""
    if action == "lead.merged_into":
        return f"Merged into another lead by {actor} (a duplicate)", ""
    if action == "lead.duplicate_merge_undone":
        return f"Merge of a duplicate undone by {actor}: its history went back to it", ""
    if action == "lead.merge_undone":
        return f"Restored by {actor}: the merge into another lead was undone", ""
    if action == "duplicate.dismissed":
        return f"Possible duplicate dismissed by {actor}: not the same person", ""
    return f"{action.split('.')[-1].replace('_', ' ').capitalize()} by {actor}", ""


def sla_entry(event, actor: str, names: Names) -> TimelineEntry | None:
    meta = event.metadata or {}
    if event.action == "sla.started":
        due = meta.get("due_at")
        when = ""
        if due:
            try:
                when = f", due {timezone.localtime(dt.datetime.fromisoformat(due)):%b %-d, %H:%M}"
            except (TypeError, ValueError):
                when = ""
        title = f"SLA clock started for {names.person(meta.get('owner_id'))}: {meta.get('policy') or 'policy'}{when}"
    elif event.action == "sla.stopped":
        reason = meta.get("reason") or ""
        if reason == "reassigned":
            return None  # the assignment beside it says so
        title = f"SLA clock stopped: {SLA_STOP_WORDS.get(reason, reason.replace('_', ' '))}" + (
            " (after the deadline)" if meta.get("breached") else "")
    elif event.action == "sla.breached":
        title = f"SLA missed by {names.person(meta.get('owner_id'), fallback='nobody')}: {meta.get('policy') or ''}"
    else:  # sla.escalated
        step = str(meta.get("action") or "").replace("_", " ")
        target = f" to {names.person(meta.get('target_id'))}" if meta.get("target_id") else ""
        title = f"SLA escalation, level {meta.get('level')}: {step}{target}"
        return TimelineEntry(event.at, "sla", title.rstrip(": "), meta.get("note") or "", actor)
    return TimelineEntry(event.at, "sla", title.rstrip(": "), "", actor)


def audit_entry(event, names: Names) -> TimelineEntry | None:
    """A lead action, stage change or edit in words; None for what another entry already tells."""
    actor = actor_phrase(kind=event.actor_kind, name=event.actor_name, user_id=event.actor_user_id, names=names)
    if event.action.startswith("sla."):
        return sla_entry(event, actor, names)
    changes, meta = event.changes or {}, event.metadata or {}
    if event.action == "lead.merged" and not changes:
        return None
    sentence, detail = _action_sentence(event, actor, meta)
    stage = changes.get("stage")
    kind = "audit"
    if isinstance(stage, list) and len(stage) == 2:
        kind = "stage"
        sentence = f"Stage {stage_word(stage[0])} → {stage_word(stage[1])}: {sentence[0].lower()}{sentence[1:]}"
    skip = {"stage", "status", "accepted_at", "rejection_reason", "first_contacted_at", "contact_attempts",
            "last_activity_at", "is_personal_email"}
    lines = tuple(field_change(name, pair[0], pair[1], names) for name, pair in changes.items()
                  if name not in skip and isinstance(pair, list) and len(pair) == 2)
    if event.action == "lead.updated" and len(lines) == 1:
        sentence, lines = f"{lines[0]} by {actor}", ()
    pair_id = meta.get("pair_id") if event.action == "lead.duplicate_merged" else None
    return TimelineEntry(event.at, kind, sentence, detail, event.actor_name, lines, pair_id=pair_id)


_NURTURE_TITLES = {
    "nurture.enrolled": "Enrolled in nurture", "nurture.exited": "Left nurture", "nurture.paused": "Nurture paused",
    "nurture.resumed": "Nurture resumed", "nurture.completed": "Nurture completed",
    "nurture.email_failed": "Nurture email failed", "nurture.bounced": "Nurture email bounced",
    "nurture.unsubscribed": "Unsubscribed from nurture emails", "nurture.suppressed": "Nurture emails suppressed",
}


def nurture_entry(event) -> TimelineEntry:
    meta = event.metadata or {}
    title = f"{_NURTURE_TITLES.get(event.action, event.action)}: {meta.get('sequence', '')}".rstrip(": ")
    detail = " · ".join(str(x) for x in (meta.get("label") or meta.get("reason") or meta.get("error") or "",
                                         meta.get("note") or "") if x)
    return TimelineEntry(event.at, "nurture", title, detail, event.actor_name)
