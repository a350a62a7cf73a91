"""The outcome of an SDR → AE handoff: placed with an AE, or waiting in Unassigned with the reason and the
SDR's manager(s) told in-app (tenant admins when the SDR has no manager), with a link to the lead."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.urls import reverse

from leads.models import Lead, Opportunity
from routing.models import Assignment, Trigger
from routing.notifications import lead_label, managers_for, notify

HANDOFF_REASON_PREFIX = "SDR → AE handoff: "
UNPLACED_KIND = "handoff_unplaced"


@dataclass(frozen=True)
class Handoff:
    """Where a qualified lead went: `placed` with `owner` (the AE), or not, and why in either case."""

    placed: bool
    owner: object | None
    reason: str

    def as_dict(self) -> dict:
        return {"placed": self.placed, "reason": self.reason}


def opportunity_handoff(*, opportunity: Opportunity) -> Handoff:
    """The handoff of a qualified lead's opportunity, read back from its latest handoff assignment (so
    qualifying again reports the same outcome). Reads the opportunity's own tenant only."""
    assignment = (Assignment.objects.for_tenant(opportunity.tenant_id)
                  .filter(lead_id=opportunity.lead_id, trigger=Trigger.HANDOFF)
                  .order_by("-at", "-id").only("reason", "owner_id").first())
    reason = assignment.reason if assignment is not None else ""
    reason = reason.removeprefix(HANDOFF_REASON_PREFIX)
    placed = opportunity.owner_id is not None
    return Handoff(placed=placed, owner=opportunity.owner if placed else None, reason=reason)


def handoff_message(handoff: Handoff) -> str:
    """What the SDR reads after qualifying (the lead page's flash)."""
    if handoff.placed:
        owner = handoff.owner
        name = (owner.get_full_name() or owner.get_username()) if owner is not None else "an account executive"
        return f"Lead qualified and handed off to {name}."
    return ("Qualified, but no account executive matches: sent to your manager's Unassigned queue — "
            f"{handoff.reason}")


def handoff_unplaced_notify(*, lead: Lead, opportunity: Opportunity, sdr_id: int | None, why: str,
                            now: datetime) -> list:
    """Tell the SDR's manager(s), else the tenant's admins, that a qualified lead waits for an AE; once
    per opportunity (a re-run notifies nobody twice). Returns the people notified."""
    recipients = managers_for(tenant=lead.tenant, user=sdr_id)
    path = reverse("lead-page", args=[lead.pk])
    sdr = get_user_model().objects.filter(pk=sdr_id).first() if sdr_id is not None else None
    by = f" by {sdr.get_full_name() or sdr.get_username()}" if sdr is not None else ""
    notified = []
    for manager in recipients:
        made = notify(
            tenant=lead.tenant_id, user=manager, kind=UNPLACED_KIND, lead=lead, email=True, now=now,
            title=f"Qualified lead needs an AE: {lead_label(lead)}",
            body=(f"{lead_label(lead)} was qualified{by}, but no account executive matches: {why}.\n"
                  f"It waits in the Unassigned queue with its opportunity “{opportunity.name}”; "
                  f"assign an AE: {path}"),
            dedup_key=f"{UNPLACED_KIND}:{opportunity.pk}",
        )
        if made is not None:
            notified.append(manager)
    return notified
