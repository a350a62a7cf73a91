"""What the lead page offers: the actions that fit the lead's state (following the lifecycle services' rules),
how each is shown, what a closed lead says instead, and a refused stale action (its words, the typed input kept)."""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from leads.locks import StaleLead
from leads.models import OPEN_STATUSES, Lead, LeadStage, LeadStatus
from leads.selectors import lead_opportunity

from .selectors import lead_ownership
from .services.lifecycle import OPEN_OPPORTUNITY_STAGES

# The Actions card, in this order: (action, title, button, button class).
ACTION_LAYOUT = (
    ("log", "Log a call, email, meeting or note", "Log activity", ""),
    ("accept", "Accept", "Accept lead", ""),
    ("reject", "Reject", "Reject lead", "btn-danger"),
    ("qualify", "Qualify (BANT)", "Qualify", ""),
    ("convert", "Convert to an opportunity", "Convert", ""),
    ("disqualify", "Disqualify", "Disqualify", "btn-danger"),
    ("recycle", "Recycle to nurture", "Recycle", ""),
    ("reassign", "Reassign", "Reassign", ""),
)
PAST_QUALIFYING = (LeadStage.SQL, LeadStage.OPPORTUNITY, LeadStage.CUSTOMER)


@dataclass(frozen=True)
class ActionPanel:
    """One action of the Actions card as `workspace/_action_form.html` shows it."""

    action: str
    form: object
    title: str
    button: str
    button_class: str = ""
    help: str = ""
    open: bool = False
    can_submit: bool = True

    @property
    def no_submit(self) -> bool:
        return not self.can_submit


def _has_open_opportunity(opportunity) -> bool:
    return opportunity is not None and opportunity.stage in OPEN_OPPORTUNITY_STAGES


def accept_converts(lead: Lead, opportunity) -> bool:
    """Accepting this lead converts it (an AE accepting an SQL handed off with its opportunity)."""
    return lead.stage == LeadStage.SQL and _has_open_opportunity(opportunity)


def lead_offers(*, lead: Lead, opportunity, can_reassign: bool, may_convert: bool, read_only: bool) -> set[str]:
    """The actions that make sense on the lead now: none on a read-only page; on a closed lead only logging
    what happened (not on a converted or archived one, worked on its opportunity or gone); on an open lead
    accept until accepted, qualify until qualified (no open opportunity), and the rest."""
    if read_only:
        return set()
    offers = {"edit", "enroll", "stop-nurture"}
    if lead.status not in (LeadStatus.CONVERTED, LeadStatus.ARCHIVED):
        offers.add("log")
    if lead.status in OPEN_STATUSES:
        offers |= {"reject", "disqualify", "recycle"}
        if lead.owner_id is not None and lead.accepted_at is None:
            offers.add("accept")
        if (lead.status != LeadStatus.QUALIFIED and lead.stage not in PAST_QUALIFYING
                and not _has_open_opportunity(opportunity)):
            offers.add("qualify")
        if may_convert:
            offers.add("convert")
        if can_reassign:
            offers.add("reassign")
    return offers


def not_offered_message(action: str, lead: Lead, opportunity) -> str:
    """Why an action the page no longer offers is refused (a second tab, an old page)."""
    if action == "accept" and lead.accepted_at is not None:
        return "This lead is already accepted."
    if action == "qualify" and _has_open_opportunity(opportunity):
        owner = opportunity.owner.get_full_name() or opportunity.owner.get_username() if opportunity.owner else ""
        return (f"This lead is already qualified: its opportunity “{opportunity.name}” is "
                + (f"with {owner}." if owner else "in the Unassigned queue."))
    if action == "qualify":
        return f"This lead is already past qualifying ({lead.get_stage_display()})."
    status = lead.get_status_display().lower()
    return f"This lead is {status}: it no longer takes this action."


def action_panels(*, forms: dict, offers: set[str], lead: Lead, opportunity, refused: str = "",
                  can_submit_refused: bool = True) -> list[ActionPanel]:
    """The Actions card's panels in order: the offered actions, and the refused one with what was typed even
    when it is no longer offered (then without a button: the input stays there to copy)."""
    panels = []
    for action, title, button, button_class in ACTION_LAYOUT:
        offered = action in offers
        if not offered and action != refused:
            continue
        if action not in forms:
            continue
        help_text = ""
        if action == "accept" and accept_converts(lead, opportunity):
            title, button = "Accept and convert", "Accept and convert"
            help_text = (f"Accepting this SQL converts it: the opportunity “{opportunity.name}” is accepted and "
                         "the lead leaves the queue.")
        elif action == "convert":
            if _has_open_opportunity(opportunity):
                button = "Accept and convert"
                help_text = ("Converting accepts the lead's open opportunity (no second one is opened) and gives it "
                             "to the lead's owner.")
            else:
                help_text = "Opens an opportunity owned by the lead's owner, linked to the account; the lead leaves " \
                            "the queue."
        panels.append(ActionPanel(action=action, form=forms[action], title=title, button=button,
                                  button_class=button_class, help=help_text, open=action == "log",
                                  can_submit=offered and (action != refused or can_submit_refused)))
    return panels


def closed_note(lead: Lead, opportunity) -> str:
    """What a closed lead's Actions card says instead of the sales actions."""
    reason = lead.rejection_reason.replace("_", " ") if lead.rejection_reason else ""
    if lead.rejection_note:
        reason = f"{reason} — {lead.rejection_note}" if reason else lead.rejection_note
    if lead.status == LeadStatus.CONVERTED and opportunity is not None and opportunity.stage in ("won", "lost"):
        how = "won: the lead is a customer" if opportunity.stage == "won" else "lost" + (
            f" ({opportunity.lost_reason.label})" if opportunity.lost_reason_id else "")
        return f"The deal “{opportunity.name}” closed {how}. No actions are open on the lead."
    if lead.status == LeadStatus.CONVERTED:
        where = f" “{opportunity.name}”" if opportunity is not None else ""
        return f"Converted into the opportunity{where}: no actions are open on the lead; the deal is worked there."
    if lead.status == LeadStatus.RECYCLED:
        return ("Recycled to nurture: no actions are open on the lead. Nurture works it, and routing brings it back "
                "to sales when it is ready.")
    if lead.status == LeadStatus.REJECTED:
        return f"Rejected by sales{': ' + reason if reason else ''}. Back with marketing: no actions are open on the lead."
    if lead.status == LeadStatus.UNQUALIFIED:
        return f"Disqualified{': ' + reason if reason else ''}. You can still log what happens, but no actions are " \
               "open on the lead."
    return f"This lead is {lead.get_status_display().lower()}: no actions are open on it."


def _when(value) -> str:
    return f"{timezone.localtime(value):%b %-d, %H:%M}" if value else ""


def ownership_sentence(ownership: dict) -> str:
    """"Ana Ruiz (AE) since Mar 7, 10:42", or "the Unassigned queue"."""
    if ownership.get("owner") is None:
        return "the Unassigned queue"
    role = f" ({ownership['role']})" if ownership.get("role") else ""
    since = f" since {_when(ownership['since'])}" if ownership.get("since") else ""
    return f"{ownership['name']}{role}{since}"


def stale_message(*, ownership: dict, can_act: bool) -> str:
    """The refusal of an action on a lead that changed hands since the page was shown."""
    by = f" by {ownership['by']}" if ownership.get("by") else ""
    if ownership.get("owner") is None:
        moved = f"This lead was moved to the Unassigned queue meanwhile{by}"
    else:
        moved = f"This lead was reassigned meanwhile{by}: it now belongs to {ownership_sentence(ownership)}"
    if can_act:
        return (f"{moved}. Nothing was applied; what you typed is kept below: check the lead as it is now and submit "
                "again to apply it.")
    return f"{moved}. Nothing was applied, and you can no longer act on it; what you typed is kept below to copy."


# --- a refused action, and the flash after one that leaves the queue -------------------------------------


def posted_owner(form) -> str:
    return str(form.data.get(form.add_prefix("expected_owner_id"), "")).strip()


def refuse_stale(form, lead, *, can_act: bool) -> None:
    """The refusal of an action on a lead that changed hands, beside the form, with what was typed kept. A member
    who may still act gets the current owner in the form, so that submitting again applies it deliberately."""
    ownership = lead_ownership(lead=lead)
    posted = posted_owner(form)
    if not can_act and posted == str(lead.owner_id or "") and "expected_owner_id" in form.fields:
        message = f"You can read this lead but no longer act on it: it belongs to {ownership['name'] or 'nobody'}."
    else:
        message = stale_message(ownership=ownership, can_act=can_act)
    form.add_error(None, message)
    if can_act and "expected_owner_id" in form.fields:
        data = form.data.copy()
        data[form.add_prefix("expected_owner_id")] = str(lead.owner_id or "")
        form.data = data


def is_stale(exc: ValidationError) -> bool:
    """The service refused the action because the lead changed hands since the page showed it."""
    return isinstance(exc, StaleLead) and exc.field == "owner"


def not_offered(action: str, form, lead) -> str:
    """Accept and qualify repeat silently in their services; the page says instead that they already happened."""
    if action not in ("accept", "qualify") or posted_owner(form) != str(lead.owner_id or ""):
        return ""  # a changed owner is the service's stale refusal
    opportunity = lead_opportunity(lead=lead)
    offers = lead_offers(lead=lead, opportunity=opportunity, can_reassign=False, may_convert=False, read_only=False)
    if action in offers or lead.status not in OPEN_STATUSES:
        return ""  # a closed lead: the service says why
    return not_offered_message(action, lead, opportunity)


def flash_with_link(message: str, lead) -> str:
    """The flash after an action that takes the lead out of the queue: it links back to the lead (read-only now
    for whoever no longer owns it)."""
    return format_html('{} <a href="{}">Open {}</a>', message, reverse("lead-page", args=[lead.pk]), str(lead))
