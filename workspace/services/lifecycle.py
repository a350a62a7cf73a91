"""A rep's decisions on a lead: accept it, reject it with a reason from the taxonomy, qualify it (BANT)
into an Opportunity handed off to an AE, disqualify it, or convert it into an opportunity.

Each is one transaction with the lead row locked, audited, and refuses a stale action: a caller that
passes `expected_owner_id` (the owner it saw) gets `leads.locks.StaleLead` (a ValidationError on `owner`)
if the lead changed hands meanwhile. Repeating an action that already happened changes nothing. Who may
act is the caller's check (the API: reps on their own leads, managers on their team's).

The SDR → AE handoff: the AE is picked by `routing.strategies.handoff_ae_pick` (named account owner,
else the matching territory's AEs in rotation, else the AE with the fewest open leads); with no AE
available the lead goes to the Unassigned queue with that reason. The handoff is an Assignment (trigger
"handoff") through `lead_assign`, which starts the AE's acceptance SLA; the AE's acceptance then
converts the lead.

Converting (`lead_convert`) is the explicit form of that last step, open to any owned lead: the lead's
open opportunity is accepted and kept (one open opportunity per lead), or a new one is opened for the
lead's owner; the lead becomes "converted" at the opportunity stage.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import webhook_emit, webhook_subscribed
from leads.locks import UNSET, lead_lock_refresh
from leads.models import (
    OPEN_STATUSES,
    Lead,
    LeadStage,
    LeadStatus,
    Opportunity,
    OpportunityStage,
    StageTransition,
)
from leads.normalize import text_clean
from leads.selectors import lead_opportunity
from leads.webhooks import lead_webhook_data
from routing.models import RejectionReason, Trigger
from routing.services.assign import lead_assign
from routing.services.sla_clocks import sla_clock_stop
from routing.strategies import account_of_lead, handoff_ae_pick

from .handoff import HANDOFF_REASON_PREFIX, handoff_unplaced_notify

BANT_FIELDS = ("budget", "authority", "need", "timeline")
CLOSED_OPPORTUNITY_STAGES = (OpportunityStage.WON, OpportunityStage.LOST)
OPEN_OPPORTUNITY_STAGES = tuple(s for s in OpportunityStage if s not in CLOSED_OPPORTUNITY_STAGES)


# --- shared steps -------------------------------------------------------------------------------------


def _require_open(lead: Lead, verb: str) -> None:
    if lead.status not in OPEN_STATUSES:
        status = lead.get_status_display().lower()
        article = "An" if status[:1] in ("a", "e", "i", "o", "u") else "A"
        raise ValidationError({"status": [f"{article} {status} lead cannot be {verb}."]})


def _stage_move(*, lead: Lead, to_stage: str, actor: Actor, reason: str, now: datetime) -> dict:
    if lead.stage == to_stage:
        return {}
    StageTransition.objects.create(tenant_id=lead.tenant_id, lead=lead, from_stage=lead.stage,
                                              to_stage=to_stage, at=now, actor_name=actor.name[:200],
                                              actor_user=actor.user, reason=reason[:200])
    change = {"stage": [lead.stage, to_stage]}
    lead.stage = to_stage
    return change


def _open_opportunity(lead: Lead) -> Opportunity | None:
    return (Opportunity.objects.for_tenant(lead.tenant_id).filter(lead=lead)
            .exclude(stage__in=CLOSED_OPPORTUNITY_STAGES).first())


def _reason_get(*, lead: Lead, reason_code: str) -> RejectionReason:
    reason = RejectionReason.objects.for_tenant(lead.tenant_id).filter(code=(reason_code or "").strip(),
                                                       is_active=True).first()
    if reason is None:
        codes = list(RejectionReason.objects.for_tenant(lead.tenant_id).filter(is_active=True)
                     .order_by("position", "id").values_list("code", flat=True))
        raise ValidationError({"reason": [f"Choose a reason from the rejection taxonomy: {', '.join(codes)}."
                                          if codes else "This tenant has no rejection reasons yet."]})
    return reason


def _webhook(*, lead: Lead, event_type: str, now: datetime, **data) -> None:
    """The lifecycle step's outbound webhook event, in its transaction (nothing when no endpoint subscribes)."""
    if webhook_subscribed(tenant=lead.tenant_id, event_type=event_type):
        webhook_emit(tenant=lead.tenant_id, event_type=event_type, lead_id=lead.pk, now=now,
                     data={"lead": lead_webhook_data(lead), **data})


def _note_clean(note: str) -> str:
    note = (note or "").strip()
    if len(note) > 500:
        raise ValidationError({"note": ["At most 500 characters."]})
    return note


# --- accept -------------------------------------------------------------------------------------------


@transaction.atomic
def lead_accept(*, lead: Lead, actor: Actor, expected_owner_id=UNSET, now: datetime | None = None) -> Lead:
    """The owner accepts the lead: an MQL becomes a SAL; an AE accepting an SQL converts it (the
    opportunity is accepted). Stops the running SLA clock ("accepted")."""
    now = now or timezone.now()
    lead = lead_lock_refresh(lead=lead, expected_owner_id=expected_owner_id)
    if lead.owner_id is None:
        raise ValidationError({"owner": ["An unassigned lead cannot be accepted; assign it first."]})
    if lead.accepted_at is not None:
        return lead
    _require_open(lead, "accepted")
    changes = {"accepted_at": [None, now.isoformat()]}
    lead.accepted_at = now
    fields = ["accepted_at", "updated_at"]
    opportunity = _open_opportunity(lead) if lead.stage == LeadStage.SQL else None
    if opportunity is not None:
        changes |= _stage_move(lead=lead, to_stage=LeadStage.OPPORTUNITY, actor=actor, reason="AE accepted the SQL",
                               now=now)
        changes["status"] = [lead.status, LeadStatus.CONVERTED]
        lead.status = LeadStatus.CONVERTED
        fields += ["stage", "status"]
        opportunity.accepted_at = now
        opportunity.save(update_fields=["accepted_at", "updated_at"])
    elif lead.stage in (LeadStage.RAW, LeadStage.MQL):
        changes |= _stage_move(lead=lead, to_stage=LeadStage.SAL, actor=actor, reason="Accepted by sales", now=now)
        fields.append("stage")
    lead.save(update_fields=fields)
    sla_clock_stop(lead=lead, reason="accepted", now=now, actor=actor)
    audit_record(tenant=lead.tenant, actor=actor, action="lead.accepted", obj=lead, changes=changes,
                 metadata={"opportunity_id": opportunity.pk if opportunity else None})
    return lead


# --- reject and disqualify ------------------------------------------------------------------------------


@transaction.atomic
def lead_reject(*, lead: Lead, actor: Actor, reason_code: str, note: str = "", expected_owner_id=UNSET,
                now: datetime | None = None) -> Lead:
    """Sales rejects the lead back to marketing with a reason from the tenant's taxonomy (seed 001,
    mistake 4): status "rejected" (or "recycled" for a nurture reason such as "not now"), the owner
    cleared, the SLA clock stopped."""
    now = now or timezone.now()
    reason = _reason_get(lead=lead, reason_code=reason_code)
    note = _note_clean(note)
    lead = lead_lock_refresh(lead=lead, expected_owner_id=expected_owner_id)
    if lead.status in (LeadStatus.REJECTED, LeadStatus.RECYCLED) and lead.rejection_reason == reason.code:
        return lead
    _require_open(lead, "rejected")
    status = LeadStatus.RECYCLED if reason.nurture else LeadStatus.REJECTED
    changes = {"status": [lead.status, status], "rejection_reason": [lead.rejection_reason, reason.code]}
    previous_owner_id = lead.owner_id
    lead.status, lead.rejection_reason, lead.rejection_note, lead.rejected_at = status, reason.code, note, now
    lead.save(update_fields=["status", "rejection_reason", "rejection_note", "rejected_at", "updated_at"])
    sla_clock_stop(lead=lead, reason="rejected", now=now, actor=actor)
    if previous_owner_id is not None:
        where = "nurture" if reason.nurture else "marketing"
        lead_assign(lead=lead, owner=None, actor=actor, trigger=Trigger.RECYCLE, team=None, now=now,
                    reason=f"Rejected by sales ({reason.label}); back to {where}" + (f": {note}" if note else ""))
    audit_record(tenant=lead.tenant, actor=actor, action="lead.rejected", obj=lead, changes=changes,
                 metadata={"reason": reason.code, "label": reason.label, "note": note, "nurture": reason.nurture,
                           "previous_owner_id": previous_owner_id})
    _webhook(lead=lead, event_type=WebhookEventType.LEAD_REJECTED, now=now, reason=reason.code,
             reason_label=reason.label, note=note, previous_owner_id=previous_owner_id)
    return lead


@transaction.atomic
def lead_disqualify(*, lead: Lead, actor: Actor, reason_code: str, note: str = "", expected_owner_id=UNSET,
                    now: datetime | None = None) -> Lead:
    """The rep worked the lead and it does not qualify (BANT failed): status "unqualified" with a
    reason from the taxonomy; the owner stays on record, the SLA clock stops."""
    now = now or timezone.now()
    reason = _reason_get(lead=lead, reason_code=reason_code)
    note = _note_clean(note)
    lead = lead_lock_refresh(lead=lead, expected_owner_id=expected_owner_id)
    if lead.status == LeadStatus.UNQUALIFIED:
        return lead
    _require_open(lead, "disqualified")
    changes = {"status": [lead.status, LeadStatus.UNQUALIFIED],
               "rejection_reason": [lead.rejection_reason, reason.code]}
    lead.status, lead.rejection_reason, lead.rejection_note = LeadStatus.UNQUALIFIED, reason.code, note
    lead.save(update_fields=["status", "rejection_reason", "rejection_note", "updated_at"])
    sla_clock_stop(lead=lead, reason="disqualified", now=now, actor=actor)
    audit_record(tenant=lead.tenant, actor=actor, action="lead.disqualified", obj=lead, changes=changes,
                 metadata={"reason": reason.code, "label": reason.label, "note": note})
    return lead


# --- qualify: SDR → AE handoff --------------------------------------------------------------------------


def _bant_clean(values: dict[str, Any]) -> dict[str, str]:
    limits = {name: Lead._meta.get_field(name).max_length for name in BANT_FIELDS}
    errors, out = {}, {}
    for name in BANT_FIELDS:
        value = values.get(name)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            errors[name] = ["Required to qualify the lead (BANT)."]
        elif len(value) > limits[name]:
            errors[name] = [f"At most {limits[name]} characters."]
        out[name] = value
    if errors:
        raise ValidationError(errors)
    return out


@transaction.atomic
def lead_qualify(*, lead: Lead, actor: Actor, budget: str, authority: str, need: str, timeline: str,
                 expected_owner_id=UNSET, now: datetime | None = None) -> Opportunity:
    """The SDR qualifies the lead (all four BANT fields): it becomes an SQL with an Opportunity owned
    by the matched AE, who gets the lead through a "handoff" assignment (acceptance SLA starts).
    Qualifying an already qualified lead returns its open opportunity unchanged."""
    now = now or timezone.now()
    bant = _bant_clean({"budget": budget, "authority": authority, "need": need, "timeline": timeline})
    lead = lead_lock_refresh(lead=lead, expected_owner_id=expected_owner_id)
    existing = _open_opportunity(lead)
    if existing is not None:
        return existing
    _require_open(lead, "qualified")
    sdr_id = lead.owner_id
    changes = {name: [getattr(lead, name), value] for name, value in bant.items() if getattr(lead, name) != value}
    for name, value in bant.items():
        setattr(lead, name, value)
    changes |= _stage_move(lead=lead, to_stage=LeadStage.SQL, actor=actor, reason="Qualified (BANT)", now=now)
    changes["status"] = [lead.status, LeadStatus.QUALIFIED]
    lead.status = LeadStatus.QUALIFIED
    lead.accepted_at = None  # the AE has to accept the SQL now (acceptance SLA)
    lead.save(update_fields=[*BANT_FIELDS, "stage", "status", "accepted_at", "updated_at"])
    ae, strategy, why = handoff_ae_pick(lead=lead, now=now)
    account = account_of_lead(lead)
    opportunity = Opportunity.objects.create(
        tenant_id=lead.tenant_id, lead=lead, account=account, owner=ae.user if ae else None,
        name=f"{lead.company or lead.full_name or lead.email or lead.phone}"[:200], qualified_by=actor.user,
        created_at=now, **bant)
    audit_record(tenant=lead.tenant, actor=actor, action="lead.qualified", obj=lead, changes=changes,
                 metadata={"opportunity_id": opportunity.pk, "ae_id": ae.user_id if ae else None,
                           "strategy": strategy, "why": why, "sdr_id": sdr_id})
    audit_record(tenant=lead.tenant, actor=actor, action="opportunity.created", obj=opportunity,
                 metadata={"lead_id": str(lead.pk), "owner_id": ae.user_id if ae else None, **bant})
    _webhook(lead=lead, event_type=WebhookEventType.LEAD_QUALIFIED, now=now, opportunity_id=opportunity.pk,
             ae_id=ae.user_id if ae else None, qualified_by_id=actor.user_id, **bant)
    # Unplaced, the lead stays with the SDR's team: it waits in their manager's Unassigned queue.
    lead_assign(lead=lead, owner=ae.user if ae else None, actor=actor, trigger=Trigger.HANDOFF, strategy=strategy,
                team=ae.team if ae else lead.team, reason=f"{HANDOFF_REASON_PREFIX}{why}", now=now,
                details={"opportunity_id": opportunity.pk, "sdr_id": sdr_id})
    if ae is None:
        handoff_unplaced_notify(lead=lead, opportunity=opportunity, sdr_id=sdr_id or actor.user_id, why=why,
                                now=now)
    return opportunity


# --- convert ------------------------------------------------------------------------------------------


def opportunity_name_default(lead: Lead) -> str:
    """"<company> – <lead name>" (the company or the person alone when the other is missing)."""
    person = lead.full_name or lead.email or lead.phone
    return (f"{lead.company} – {person}" if lead.company and person else lead.company or person)[:200]


def _convert_input_clean(*, name: str, stage: str) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    try:
        name = text_clean(name or "")
    except ValidationError as exc:
        errors["name"], name = exc.messages, ""
    limit = Opportunity._meta.get_field("name").max_length
    if len(name) > limit:
        errors["name"] = [f"At most {limit} characters."]
    stage = (stage or "").strip()
    if stage and stage not in OPEN_OPPORTUNITY_STAGES:
        labels = ", ".join(str(OpportunityStage(s).label) for s in OPEN_OPPORTUNITY_STAGES)
        errors["stage"] = [f"Choose an open stage: {labels}."]
    if errors:
        raise ValidationError(errors)
    return name, stage


def _convert_opportunity(*, lead: Lead, actor: Actor, name: str, stage: str,
                         now: datetime) -> tuple[Opportunity, dict | None]:
    """The lead's open opportunity brought in line (accepted, the lead's owner, `name`/`stage` if given) and
    its changes; or a new one and None."""
    opportunity = _open_opportunity(lead)
    account = account_of_lead(lead)
    if opportunity is None:
        return Opportunity.objects.create(
            tenant_id=lead.tenant_id, lead=lead, account=account, owner_id=lead.owner_id,
            name=name or opportunity_name_default(lead), stage=stage or OpportunityStage.DISCOVERY,
            qualified_by=actor.user, accepted_at=now, created_at=now,
            **{field: getattr(lead, field) for field in BANT_FIELDS}), None
    wanted = {"name": name or opportunity.name, "stage": stage or opportunity.stage, "owner_id": lead.owner_id,
              "account_id": opportunity.account_id or (account.pk if account else None),
              "accepted_at": opportunity.accepted_at or now}
    changes = {field: [getattr(opportunity, field), value] for field, value in wanted.items()
               if getattr(opportunity, field) != value}
    for field, (_, value) in changes.items():
        setattr(opportunity, field, value)
    if changes:
        opportunity.save(update_fields=[*changes, "updated_at"])
    return opportunity, changes


@transaction.atomic
def lead_convert(*, lead: Lead, actor: Actor, name: str = "", stage: str = "", expected_owner_id=UNSET,
                 now: datetime | None = None) -> Opportunity:
    """Convert an open, owned lead into an opportunity; returns the opportunity.

    The lead's open opportunity (an SQL handed off to an AE) is accepted and kept, as the AE's accept
    does; otherwise one is opened, named `name` (default "<company> – <lead name>") at `stage` (an open
    stage; default discovery), linked to the lead's account and carrying the lead's BANT answers. Either
    way the opportunity is owned by the lead's owner (a kept one follows a reassigned lead), and a given
    `name`/`stage` renames/moves a kept one. The lead becomes "converted" at the opportunity stage (a
    stage transition), counts as accepted, and its SLA clock stops ("converted"). Converting a
    converted lead again returns its opportunity unchanged.
    """
    now = now or timezone.now()
    name, stage = _convert_input_clean(name=name, stage=stage)
    lead = lead_lock_refresh(lead=lead, expected_owner_id=expected_owner_id)
    if lead.status == LeadStatus.CONVERTED:
        converted = lead_opportunity(lead=lead)
        if converted is not None:
            return converted
    _require_open(lead, "converted")
    if lead.owner_id is None:
        raise ValidationError({"owner": ["An unassigned lead cannot be converted; assign it to its owner first."]})

    opportunity, opportunity_changes = _convert_opportunity(lead=lead, actor=actor, name=name, stage=stage, now=now)
    changes = _stage_move(lead=lead, to_stage=LeadStage.OPPORTUNITY, actor=actor, reason="Converted to an opportunity",
                          now=now)
    changes["status"] = [lead.status, LeadStatus.CONVERTED]
    lead.status = LeadStatus.CONVERTED
    fields = ["stage", "status", "updated_at"]
    if lead.accepted_at is None:
        changes["accepted_at"] = [None, now]
        lead.accepted_at = now
        fields.append("accepted_at")
    lead.save(update_fields=fields)
    sla_clock_stop(lead=lead, reason="converted", now=now, actor=actor)
    audit_record(tenant=lead.tenant, actor=actor, action="lead.converted", obj=lead, changes=changes,
                 metadata={"opportunity_id": opportunity.pk, "opportunity_created": opportunity_changes is None,
                           "opportunity_name": opportunity.name, "opportunity_stage": opportunity.stage,
                           "owner_id": lead.owner_id})
    if opportunity_changes is None:
        audit_record(tenant=lead.tenant, actor=actor, action="opportunity.created", obj=opportunity,
                     metadata={"lead_id": str(lead.pk), "owner_id": lead.owner_id, "via": "convert"})
    elif opportunity_changes:
        audit_record(tenant=lead.tenant, actor=actor, action="opportunity.updated", obj=opportunity,
                     changes=opportunity_changes, metadata={"lead_id": str(lead.pk), "via": "convert"})
    _webhook(lead=lead, event_type=WebhookEventType.LEAD_CONVERTED, now=now, opportunity={
        "id": opportunity.pk, "name": opportunity.name, "stage": opportunity.stage, "owner_id": opportunity.owner_id})
    return opportunity
