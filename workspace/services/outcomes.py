"""Outcomes in: a deal closed won or lost on its opportunity (the API's PATCH, the lead page, the admin), and the
outcome sync of deals closed in another CRM (`POST /api/v1/outcomes/`).

Both write the lead's one current `leads.Outcome` and move the lead the way the lifecycle actions do
(`services.lifecycle`), in one transaction with the lead rows locked:
- won: the lead is converted at the customer stage (a stage transition; accepted if it was not), its SLA clock
  stops ("converted"), webhook `lead.converted`;
- lost: a lead whose deal this was (it had an opportunity, or was converted) stays converted at the opportunity
  stage, as a converted lead with a lost deal always was (nurture's "opportunity lost" audience); any other lead is
  closed as unqualified with the reason; its SLA clock stops ("closed"), webhook `lead.rejected`;
- disqualified: the lead is closed as unqualified with the reason (as `lead_disqualify`), clock and webhook as lost.
Each recorded outcome is one `lead.outcome` audit event on the lead (its timeline), which keeps every version: a
changed outcome updates the row. The same outcome twice is a duplicate and writes nothing.

`outcomes_sync` is set-based: a fixed number of queries for 1 or 1,000 items.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_bulk, audit_event_build, audit_record
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import WebhookItem, webhook_emit_bulk, webhook_subscriptions
from leads.currencies import currency_clean
from leads.locks import lead_lock_refresh, leads_lock
from leads.lost_reasons import lost_reasons_active
from leads.models import (
    Lead,
    LeadStage,
    LeadStatus,
    LostReason,
    Opportunity,
    OpportunityStage,
    Outcome,
    OutcomeResult,
    OutcomeSource,
    StageTransition,
)
from leads.webhooks import lead_webhook_data
from routing.services.sla_clocks import sla_clocks_stop_many

CLOSED_STAGES = (OpportunityStage.WON, OpportunityStage.LOST)
FUTURE_SKEW = dt.timedelta(minutes=5)  # a close date this far ahead is a clock's drift, not the future
AMOUNT_MAX = Decimal("999999999999.99")  # Outcome.amount: 14 digits, 2 after the point
REASON_MAX = 500


class OutcomeStatus(models.TextChoices):
    """What happened to one item of an outcome sync."""

    RECORDED = "recorded", "Recorded: the lead's outcome is this one now"
    DUPLICATE = "duplicate", "The lead already has this outcome; nothing written"
    UNKNOWN_LEAD = "unknown_lead", "No lead of this tenant matches"
    ERROR = "error", "Not recorded; see errors"


@dataclass
class OutcomeInput:
    """One outcome, validated for shape (`workspace.serializers.OutcomeInSerializer`). The lead is named by one of
    `lead_id`, `email` (normalised) or `external_id`. None/"" is "not given": a repeat of the lead's current result
    keeps the values it does not give."""

    index: int
    result: str
    lead_id: uuid.UUID | None = None
    email: str = ""
    external_id: str = ""
    amount: Decimal | None = None
    currency: str = ""
    closed_at: dt.datetime | None = None
    reason: str = ""


@dataclass
class OutcomeItemResult:
    index: int
    status: str
    lead_id: uuid.UUID | None = None
    outcome_id: int | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": str(self.status)}
        if self.lead_id is not None:
            out["lead_id"] = str(self.lead_id)
        if self.outcome_id is not None:
            out["outcome_id"] = self.outcome_id
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class OutcomeBatchResult:
    results: list[OutcomeItemResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.results, key=lambda r: r.index)
        count = {status: sum(1 for r in ordered if r.status == status) for status in OutcomeStatus.values}
        return {"results": [r.as_dict() for r in ordered], "recorded": count[OutcomeStatus.RECORDED],
                "duplicates": count[OutcomeStatus.DUPLICATE], "unknown_leads": count[OutcomeStatus.UNKNOWN_LEAD],
                "errors": count[OutcomeStatus.ERROR]}


@dataclass
class _Wanted:
    """An outcome as it is to be stored, resolved against the lead's current one."""

    result: str
    amount: Decimal | None
    currency: str
    closed_at: dt.datetime
    reason: str
    lost_reason: LostReason | None

    def same_as(self, outcome: Outcome | None) -> bool:
        return outcome is not None and (
            outcome.result, outcome.amount, outcome.currency, outcome.closed_at, outcome.reason,
            outcome.lost_reason_id) == (
            self.result, self.amount, self.currency, self.closed_at, self.reason,
            self.lost_reason.pk if self.lost_reason else None)


def _wanted(*, given: OutcomeInput, current: Outcome | None, lost_reason: LostReason | None,
            now: dt.datetime) -> _Wanted:
    """The outcome to store: what is given; for a repeat of the current result, the current values where nothing
    is given (so a retry without `closed_at` is the same outcome, not a new close date)."""
    keep = current if current is not None and current.result == given.result else None
    won = given.result == OutcomeResult.WON
    amount = given.amount if given.amount is not None else (keep.amount if keep else None)
    currency = given.currency or (keep.currency if keep and amount is not None else "")
    if lost_reason is None and keep is not None and not given.reason:
        lost_reason = keep.lost_reason
    return _Wanted(
        result=given.result, amount=amount, currency=currency if amount is not None else "",
        closed_at=given.closed_at or (keep.closed_at if keep else now),
        reason=given.reason or (keep.reason if keep else ""),
        lost_reason=None if won else lost_reason,
    )


def _money(amount: Decimal | None, currency: str) -> str:
    return f"{amount:,.2f} {currency}".strip() if amount is not None else ""


def _stage_transition(*, lead: Lead, to_stage: str, actor: Actor, reason: str, now: dt.datetime,
                      transitions: list) -> dict:
    """The lifecycle's stage move (`lifecycle._stage_move`), its transition row collected for one bulk insert."""
    if lead.stage == to_stage:
        return {}
    transitions.append(StageTransition(tenant_id=lead.tenant_id, lead=lead, from_stage=lead.stage, to_stage=to_stage,
                                       at=now, actor_name=actor.name[:200], actor_user=actor.user, reason=reason[:200]))
    change = {"stage": [lead.stage, to_stage]}
    lead.stage = to_stage
    return change


def _lead_close(*, lead: Lead, wanted: _Wanted, had_deal: bool, actor: Actor, now: dt.datetime,
                transitions: list) -> dict:
    """Move the lead (in memory) as its outcome says; returns its changes `{field: [before, after]}`."""
    before = {name: getattr(lead, name) for name in ("status", "rejection_reason", "accepted_at")}
    changes: dict[str, list] = {}
    if wanted.result == OutcomeResult.WON:
        changes |= _stage_transition(lead=lead, to_stage=LeadStage.CUSTOMER, actor=actor, reason="Closed won",
                                     now=now, transitions=transitions)
        lead.status = LeadStatus.CONVERTED
        lead.accepted_at = lead.accepted_at or now
        lead.rejection_reason, lead.rejection_note = "", ""
    else:
        lost_deal = wanted.result == OutcomeResult.LOST and (had_deal or lead.status == LeadStatus.CONVERTED)
        if lost_deal or lead.stage == LeadStage.CUSTOMER:
            changes |= _stage_transition(lead=lead, to_stage=LeadStage.OPPORTUNITY, actor=actor, now=now,
                                         reason="Closed lost" if lost_deal else "Disqualified after closing",
                                         transitions=transitions)
        if lost_deal:
            lead.status = LeadStatus.CONVERTED
        else:
            lead.status = LeadStatus.UNQUALIFIED
            lead.rejection_reason = wanted.lost_reason.code if wanted.lost_reason else ""
            lead.rejection_note = (wanted.reason or (wanted.lost_reason.label if wanted.lost_reason else ""))[:500]
    for name, value in before.items():
        if getattr(lead, name) != value:
            changes[name] = [value, getattr(lead, name)]
    lead.updated_at = now
    return changes


def _outcome_data(outcome: Outcome) -> dict[str, Any]:
    reason = outcome.lost_reason
    return {"id": outcome.pk, "result": outcome.result,
            "amount": str(outcome.amount) if outcome.amount is not None else None, "currency": outcome.currency,
            "closed_at": outcome.closed_at.isoformat(), "reason": outcome.reason,
            "lost_reason": reason.code if reason else None, "lost_reason_label": reason.label if reason else "",
            "source": outcome.source, "opportunity_id": outcome.opportunity_id}


LEAD_FIELDS = ("status", "stage", "accepted_at", "rejection_reason", "rejection_note", "sla_due_at", "updated_at")
OUTCOME_FIELDS = ("result", "amount", "currency", "closed_at", "reason", "lost_reason", "source", "opportunity",
                  "updated_at")


def _outcomes_write(*, tenant, items: list[tuple[Lead, _Wanted, Opportunity | None, bool]], actor: Actor,
                    source: str, now: dt.datetime) -> dict[uuid.UUID, Outcome]:
    """Record the outcomes of locked leads (one per lead: the batch's last wins) and move the leads; set-based.
    `items`: (lead, wanted outcome, its opportunity, whether the lead had a deal). Returns the stored outcomes."""
    if not items:
        return {}
    current = {o.lead_id: o for o in Outcome.objects.for_tenant(tenant).filter(lead_id__in=[i[0].pk for i in items])}
    previous = {lead_id: _outcome_data(o) for lead_id, o in current.items()}
    transitions: list[StageTransition] = []
    recorded: dict[uuid.UUID, tuple[Lead, Outcome, dict]] = {}
    for lead, wanted, opportunity, had_deal in items:
        outcome = current.get(lead.pk) or Outcome(tenant_id=tenant.pk, lead=lead, created_at=now)
        outcome.result, outcome.amount, outcome.currency = wanted.result, wanted.amount, wanted.currency
        outcome.closed_at, outcome.reason, outcome.lost_reason = wanted.closed_at, wanted.reason, wanted.lost_reason
        outcome.source, outcome.updated_at = source, now
        outcome.opportunity = opportunity or (outcome.opportunity if outcome.pk else None)
        current[lead.pk] = outcome
        changes = _lead_close(lead=lead, wanted=wanted, had_deal=had_deal, actor=actor, now=now,
                              transitions=transitions)
        merged = recorded[lead.pk][2] if lead.pk in recorded else {}
        for name, pair in changes.items():
            merged[name] = [merged[name][0], pair[1]] if name in merged else pair
        recorded[lead.pk] = (lead, outcome, merged)
    outcomes = [outcome for _lead, outcome, _changes in recorded.values()]
    Outcome.objects.bulk_create(outcomes, update_conflicts=True, unique_fields=["tenant", "lead"],
                                update_fields=list(OUTCOME_FIELDS))
    leads = [lead for lead, _outcome, _changes in recorded.values()]
    reasons = {lead.pk: "converted" if lead.status == LeadStatus.CONVERTED and recorded[lead.pk][1].result
               == OutcomeResult.WON else "closed" for lead in leads}
    events = sla_clocks_stop_many(tenant=tenant, leads=leads, reasons=reasons, now=now, actor=actor)
    Lead.objects.for_tenant(tenant).bulk_update(leads, list(LEAD_FIELDS))
    StageTransition.objects.bulk_create(transitions)
    for lead, outcome, changes in recorded.values():
        events.append(audit_event_build(tenant=tenant, actor=actor, action="lead.outcome", obj=lead, changes=changes,
                                        metadata={**_outcome_data(outcome), "outcome_id": outcome.pk,
                                                  "previous": previous.get(lead.pk)}))
    audit_bulk(events=events)
    _webhooks(tenant=tenant, recorded=list(recorded.values()), now=now)
    return {lead.pk: outcome for lead, outcome, _changes in recorded.values()}


def _webhooks(*, tenant, recorded: list, now: dt.datetime) -> None:
    """lead.converted for the won, lead.rejected for the lost and disqualified (nothing when nobody subscribes)."""
    subscribed = webhook_subscriptions(tenant=tenant)
    won, closed = [], []
    for lead, outcome, _changes in recorded:
        data = {"lead": lead_webhook_data(lead), "outcome": _outcome_data(outcome)}
        if outcome.result == OutcomeResult.WON:
            won.append(WebhookItem(data=data, lead_id=lead.pk))
        else:
            reason = outcome.lost_reason
            closed.append(WebhookItem(lead_id=lead.pk, data={
                **data, "reason": reason.code if reason else "", "reason_label": reason.label if reason else "",
                "note": outcome.reason}))
    if won and WebhookEventType.LEAD_CONVERTED in subscribed:
        webhook_emit_bulk(tenant=tenant, event_type=WebhookEventType.LEAD_CONVERTED, items=won, now=now)
    if closed and WebhookEventType.LEAD_REJECTED in subscribed:
        webhook_emit_bulk(tenant=tenant, event_type=WebhookEventType.LEAD_REJECTED, items=closed, now=now)


# --- closing an opportunity (API PATCH, lead page, admin) ----------------------------------------------------


def lost_reason_get(*, tenant, code) -> LostReason:
    """An active reason of the tenant's lost-deal taxonomy by code, or a ValidationError on `lost_reason` that
    lists the codes."""
    code = str(code or "").strip()
    reason = LostReason.objects.for_tenant(tenant).filter(code=code, is_active=True).first() if code else None
    if reason is None:
        codes = [r.code for r in lost_reasons_active(tenant_id=getattr(tenant, "pk", tenant))]
        raise ValidationError({"lost_reason": [f"Choose why the deal was lost: {', '.join(codes)}." if codes
                                               else "This tenant has no lost reasons yet (admin: Lost reasons)."]})
    return reason


def _close_date_clean(value, now: dt.datetime, errors: dict) -> dt.datetime | None:
    if value is not None and value > now + FUTURE_SKEW:
        errors["closed_at"] = ["The close date cannot be in the future."]
    return value


def _amount_clean(value, errors: dict) -> Decimal | None:
    if value is None:
        return None
    if value < 0:
        errors["amount"] = ["The amount cannot be negative."]
    elif value > AMOUNT_MAX:
        errors["amount"] = [f"At most {AMOUNT_MAX:,}."]
    return value


OPPORTUNITY_EDIT_FIELDS = ("stage", "amount", "currency", "closed_at", "lost_reason")


@dataclass
class OpportunityChange:
    """An opportunity's stage and closing values, validated (`opportunity_change_clean`)."""

    stage: str
    amount: Decimal | None
    currency: str
    closed_at: dt.datetime | None
    lost_reason: LostReason | None


def opportunity_change_clean(*, opportunity: Opportunity, data: dict[str, Any],
                             now: dt.datetime | None = None) -> OpportunityChange:
    """`data` (stage, amount, currency, closed_at, lost_reason code: those given) checked against the opportunity:
    the values it would have, or a ValidationError with every field's message. Reads only (the admin form asks it
    before saving; `opportunity_update` again under the lock)."""
    now = now or timezone.now()
    unknown = set(data) - set(OPPORTUNITY_EDIT_FIELDS)
    if unknown:
        raise ValueError(f"not editable here: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    stage = data.get("stage", opportunity.stage)
    if stage not in OpportunityStage.values:
        errors["stage"] = [f"Choose a stage: {', '.join(OpportunityStage.values)}."]
    elif opportunity.stage in CLOSED_STAGES and stage not in CLOSED_STAGES:
        errors["stage"] = ["A closed opportunity does not reopen: move it between won and lost, or open a new one."]
    closing = stage in CLOSED_STAGES
    amount = _amount_clean(data["amount"], errors) if "amount" in data else opportunity.amount
    try:
        currency = currency_clean(data["currency"]) if "currency" in data else opportunity.currency
    except ValidationError as exc:
        errors["currency"], currency = exc.messages, opportunity.currency
    closed_at = _close_date_clean(data.get("closed_at"), now, errors) if "closed_at" in data else opportunity.closed_at
    lost_reason = opportunity.lost_reason
    if data.get("lost_reason") not in (None, ""):
        try:
            lost_reason = lost_reason_get(tenant=opportunity.tenant_id, code=data["lost_reason"])
        except ValidationError as exc:
            errors |= exc.message_dict
    elif "lost_reason" in data:
        lost_reason = None
    if not closing and "closed_at" in data and data["closed_at"] is not None:
        errors.setdefault("closed_at", ["Only a closed deal has a close date: set the stage to won or lost."])
    if stage == OpportunityStage.WON:
        if amount is None:
            errors.setdefault("amount", ["Give the amount the deal was won for."])
        if data.get("lost_reason"):
            errors.setdefault("lost_reason", ["A won deal has no lost reason."])
        lost_reason = None
    elif stage == OpportunityStage.LOST and lost_reason is None:
        errors.setdefault("lost_reason", ["Choose why the deal was lost."])
    if amount is not None and not currency:
        errors.setdefault("currency", ["Give the currency of the amount (ISO 4217, e.g. USD or EUR)."])
    if errors:
        raise ValidationError(errors)
    if closing:
        closed_at = closed_at or now
    else:
        closed_at, lost_reason = None, None
    return OpportunityChange(stage=stage, amount=amount, currency=currency, closed_at=closed_at,
                             lost_reason=lost_reason)


@transaction.atomic
def opportunity_update(*, opportunity: Opportunity, actor: Actor, data: dict[str, Any], source: str,
                       now: dt.datetime | None = None) -> Opportunity:
    """Change an opportunity's stage, amount, currency, close date or lost reason (`data` holds those given;
    `lost_reason` is a code). Closing it won needs an amount and its currency, lost a reason of the tenant's lost
    taxonomy; the close date defaults to now. A closed opportunity moves between won and lost or has its values
    corrected, but does not reopen. Closing (or correcting a closed one) records the lead's outcome in the same
    transaction (see the module). Changing nothing changes nothing."""
    now = now or timezone.now()
    lead = lead_lock_refresh(lead=opportunity.lead)  # the lead first: the lock order of every app
    opportunity = (Opportunity.objects.for_tenant(lead.tenant_id).select_for_update(of=("self",))
                   .select_related("lost_reason").get(pk=opportunity.pk))
    opportunity.lead = lead
    change = opportunity_change_clean(opportunity=opportunity, data=data, now=now)
    stage, amount, currency = change.stage, change.amount, change.currency
    closed_at, lost_reason, closing = change.closed_at, change.lost_reason, change.stage in CLOSED_STAGES

    wanted = {"stage": stage, "amount": amount, "currency": currency,
              "closed_at": closed_at, "lost_reason_id": lost_reason.pk if lost_reason else None}
    changes = {name: [getattr(opportunity, name), value] for name, value in wanted.items()
               if getattr(opportunity, name) != value}
    if not changes:
        return opportunity
    for name, (_before, value) in changes.items():
        setattr(opportunity, name, value)
    opportunity.lost_reason = lost_reason
    opportunity.save(update_fields=[*(n.removesuffix("_id") for n in changes), "updated_at"])
    audit_record(tenant=lead.tenant, actor=actor, action="opportunity.closed" if closing else "opportunity.updated",
                 obj=opportunity, changes=changes, metadata={"lead_id": str(lead.pk), "via": source})
    if closing:
        result = OutcomeResult.WON if stage == OpportunityStage.WON else OutcomeResult.LOST
        current = Outcome.objects.for_tenant(lead.tenant_id).filter(lead=lead).select_related("lost_reason").first()
        outcome = _Wanted(result=result, amount=amount, currency=currency if amount is not None else "",
                          closed_at=closed_at, reason=current.reason if current and current.result == result else "",
                          lost_reason=lost_reason)
        if not outcome.same_as(current) or (current and current.opportunity_id != opportunity.pk):
            _outcomes_write(tenant=lead.tenant, items=[(lead, outcome, opportunity, True)], actor=actor,
                            source=source, now=now)
    return opportunity


# --- the outcome sync (another CRM) ---------------------------------------------------------------------------


def _leads_matching(*, tenant, items: list[OutcomeInput]) -> dict[tuple[str, str], uuid.UUID]:
    """`{("lead_id"|"email"|"external_id", value): lead id}` of the tenant's leads the items name (one query)."""
    ids = {i.lead_id for i in items if i.lead_id is not None}
    emails = {i.email for i in items if i.email}
    external = {i.external_id for i in items if i.external_id}
    match = Q(pk__in=ids) | Q(email__in=emails) | Q(external_id__in=external)
    found: dict[tuple[str, str], uuid.UUID] = {}
    for pk, email, external_id in Lead.objects.for_tenant(tenant).filter(match).values_list("pk", "email",
                                                                                             "external_id"):
        found[("lead_id", str(pk))] = pk
        if email:
            found[("email", email)] = pk
        if external_id:
            found[("external_id", external_id)] = pk
    return found


def _key(item: OutcomeInput) -> tuple[str, str]:
    if item.lead_id is not None:
        return "lead_id", str(item.lead_id)
    return ("email", item.email) if item.email else ("external_id", item.external_id)


def _sync_reason(reasons: dict[str, LostReason], text: str) -> LostReason | None:
    """The taxonomy's reason a sent reason names (by code or label, any case), else None (kept as free text)."""
    text = (text or "").strip().lower()
    return reasons.get(text) or reasons.get(text.replace(" ", "_").replace("-", "_"))


@transaction.atomic
def outcomes_sync(*, tenant, items: list[OutcomeInput], actor: Actor, now: dt.datetime | None = None) -> OutcomeBatchResult:
    """Record outcomes of deals closed in another CRM, per item `recorded`, `duplicate` (the lead has this outcome
    already: nothing written), `unknown_lead` or `error`. A lead with an open opportunity has it closed the same
    way (won with the amount; lost otherwise). A reason that names one of the tenant's lost reasons (code or label)
    is recorded as that reason, any other as free text. Set-based: a fixed number of queries whatever the size."""
    now = now or timezone.now()
    result = OutcomeBatchResult()
    found = _leads_matching(tenant=tenant, items=items) if items else {}
    known = [(item, found[_key(item)]) for item in items if _key(item) in found]
    result.results += [OutcomeItemResult(index=item.index, status=OutcomeStatus.UNKNOWN_LEAD)
                       for item in items if _key(item) not in found]
    if not known:
        return result
    leads = {lead.pk: lead for lead in leads_lock(tenant=tenant, lead_ids={pk for _item, pk in known})}
    for lead in leads.values():
        lead.tenant = tenant
    reasons = {}
    for reason in LostReason.objects.for_tenant(tenant).filter(is_active=True):
        reasons[reason.code.lower()] = reasons.get(reason.code.lower(), reason)
        reasons.setdefault(reason.label.strip().lower(), reason)
    current = {o.lead_id: o for o in Outcome.objects.for_tenant(tenant).filter(lead_id__in=list(leads))}
    open_deals: dict[uuid.UUID, Opportunity] = {}
    for opportunity in (Opportunity.objects.for_tenant(tenant).filter(lead_id__in=list(leads))
                        .exclude(stage__in=CLOSED_STAGES).select_for_update(of=("self",)).order_by("id")):
        open_deals.setdefault(opportunity.lead_id, opportunity)

    to_write: list[tuple[Lead, _Wanted, Opportunity | None, bool]] = []
    closed_deals: dict[int, Opportunity] = {}
    recorded: list[tuple[int, uuid.UUID]] = []
    for item, lead_id in known:
        lead = leads.get(lead_id)
        if lead is None:  # deleted between the match and the lock
            result.results.append(OutcomeItemResult(index=item.index, status=OutcomeStatus.UNKNOWN_LEAD))
            continue
        stored = current.get(lead_id)
        wanted = _wanted(given=item, current=stored, lost_reason=_sync_reason(reasons, item.reason), now=now)
        if wanted.same_as(stored):
            result.results.append(OutcomeItemResult(index=item.index, status=OutcomeStatus.DUPLICATE, lead_id=lead_id,
                                                    outcome_id=stored.pk))
            continue
        deal = open_deals.pop(lead_id, None)
        if deal is not None:
            deal.stage = OpportunityStage.WON if wanted.result == OutcomeResult.WON else OpportunityStage.LOST
            deal.closed_at, deal.lost_reason, deal.updated_at = wanted.closed_at, wanted.lost_reason, now
            if wanted.amount is not None:
                deal.amount, deal.currency = wanted.amount, wanted.currency
            closed_deals[deal.pk] = deal
        had_deal = deal is not None or (stored is not None and stored.opportunity_id is not None)
        to_write.append((lead, wanted, deal, had_deal))
        # The batch's next item for this lead compares with this one.
        current[lead_id] = Outcome(pk=stored.pk if stored else None, lead_id=lead_id, result=wanted.result,
                                   amount=wanted.amount, currency=wanted.currency, closed_at=wanted.closed_at,
                                   reason=wanted.reason, lost_reason=wanted.lost_reason,
                                   opportunity_id=deal.pk if deal else (stored.opportunity_id if stored else None))
        recorded.append((item.index, lead_id))
    if closed_deals:
        Opportunity.objects.for_tenant(tenant).bulk_update(
            list(closed_deals.values()), ["stage", "closed_at", "lost_reason", "amount", "currency", "updated_at"])
        audit_bulk(events=[audit_event_build(
            tenant=tenant, actor=actor, action="opportunity.closed", obj=deal,
            metadata={"lead_id": str(deal.lead_id), "via": OutcomeSource.SYNC, "stage": deal.stage})
            for deal in closed_deals.values()])
    stored_outcomes = _outcomes_write(tenant=tenant, items=to_write, actor=actor, source=OutcomeSource.SYNC, now=now)
    result.results += [OutcomeItemResult(index=index, status=OutcomeStatus.RECORDED, lead_id=lead_id,
                                         outcome_id=stored_outcomes[lead_id].pk) for index, lead_id in recorded]
    return result
