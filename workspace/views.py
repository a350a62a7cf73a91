"""UI views of the rep's workspace: My queue (htmx filters, pagination) and the lead page with its actions.

Views read through selectors and act through services only; every read is scoped to the request's
tenant and the member's visibility (a lead the user may not see is a 404, like a missing one). The one
exception: the lead page shows a lead its former owner (or anyone who acted on it) worked, read-only.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.roles import (
    DUPLICATES_REVIEW,
    LEAD_EDIT,
    LEAD_EXPORT,
    LEAD_NURTURE,
    LEAD_REASSIGN,
    LEAD_WORK,
    OPPORTUNITY_CLOSE,
)
from leadmgmt.tenancy.selectors import memberships_of_user
from leads.activity_outcomes import activity_outcomes_for
from leads.lost_reasons import lost_reasons_active
from leads.models import (
    OPEN_STATUSES,
    DuplicateStatus,
    Lead,
    LeadStatus,
    OpportunityStage,
    OutcomeSource,
)
from leads.selectors import (
    LeadViewer,
    lead_account_leads,
    lead_get_for_viewer,
    lead_opportunity,
    lead_queue,
    lead_queue_facets,
    tenant_member_get,
)
from leads.services.email_bounce import lead_email_bounce_dismiss
from leads.services.lead_edit import lead_update
from nurture.models import Enrollment, Sequence
from nurture.selectors import lead_enrollments, sequences_for_manual_enrolment
from nurture.services.enrollment import enrollment_stop, lead_enroll
from routing.selectors import reassign_targets
from routing.services.aging import lead_recycle
from routing.services.assign import lead_reassign
from scoring.models import LeadClass
from scoring.selectors import rule_labels, score_explain

from . import forms
from .duplicate_selectors import duplicate_pairs_for_viewer
from .export import export_chooser
from .lead_page_offers import (
    action_panels,
    closed_note,
    flash_with_link,
    is_stale,
    lead_offers,
    not_offered,
    refuse_stale,
)
from .selectors import lead_ownership, lead_sla_state, lead_timeline, rejection_reasons
from .services.activities import activity_log
from .services.handoff import handoff_message, opportunity_handoff
from .services.lifecycle import (
    OPEN_OPPORTUNITY_STAGES,
    lead_accept,
    lead_convert,
    lead_disqualify,
    lead_qualify,
    lead_reject,
    opportunity_name_default,
)
from .services.outcomes import opportunity_update

QUEUE_PAGE_SIZE = 25
CLASS_LABELS = dict(LeadClass.choices)


def workspace_required(view):
    """Signed in, with an active tenant; a member of several tenants who has not chosen one picks first."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.tenant is None or request.membership is None:
            return render(request, "workspace/no_workspace.html", status=403)
        if SESSION_TENANT_KEY not in request.session:
            if len(memberships_of_user(user=request.user)) > 1:
                return redirect(f"{reverse('tenant-switch')}?{urlencode({'next': request.get_full_path()})}")
            request.session[SESSION_TENANT_KEY] = request.tenant.pk
        return view(request, *args, **kwargs)

    return wrapper


def _viewer(request) -> LeadViewer:
    return LeadViewer(tenant=request.tenant, membership=request.membership)


# --- My queue -----------------------------------------------------------------------------------------


@require_GET
@workspace_required
def queue(request):
    """The signed-in member's open leads, next to work first; htmx requests get the table partial only."""
    facets = lead_queue_facets(tenant=request.tenant, user=request.user)
    form = forms.QueueFilterForm(request.GET or None, sources=facets["sources"], bands=facets["bands"])
    filters = form.filters()
    paginator = Paginator(lead_queue(tenant=request.tenant, user=request.user, filters=filters), QUEUE_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for lead in page.object_list:
        lead.class_label = CLASS_LABELS.get(lead.lead_class, lead.lead_class)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "filtered": bool(filters), "query": query.urlencode()}
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        return render(request, "workspace/_queue_table.html", context)
    if _viewer(request).may(LEAD_EXPORT):
        context.update(export_chooser(filters=[(k, v) for k, values in query.lists() for v in values]))
    return render(request, "workspace/queue.html", context)


# --- The lead page ------------------------------------------------------------------------------------


def _reasons(tenant):
    return rejection_reasons(tenant=tenant)


def _reassign_targets(request, lead, *, keep_owner: bool = False) -> list:
    """The reps this manager (or admin) may hand the lead to now: routing's `reassign_targets`, the rule of the
    API and the manager pages too; the owner is kept only to validate a post."""
    return reassign_targets(tenant=request.tenant, membership=request.membership, at=timezone.now(), lead=lead,
                            exclude_owner=not keep_owner)


def _outcomes(tenant):
    return activity_outcomes_for(tenant_id=tenant.pk)


def _may_convert(viewer: LeadViewer, lead) -> bool:
    """The lead's owner converts it, or a manager or admin for them (the matrix); never an unassigned lead."""
    return lead.owner_id is not None and viewer.may_on(LEAD_WORK, lead)


def _lost_reasons(tenant):
    return lost_reasons_active(tenant_id=tenant.pk)


UNREAD = object()  # `_may_close` reads the lead's opportunity itself


def _may_close(viewer: LeadViewer, lead, opportunity=UNREAD) -> bool:
    """The deal on the lead page closes won or lost while it is open, for whom the matrix lets close it."""
    if opportunity is UNREAD:
        opportunity = lead_opportunity(lead=lead)
    if opportunity is not None and opportunity.lead_id == lead.pk:
        opportunity.lead = lead  # the page's lead: no query for the object rule
    return (opportunity is not None and opportunity.stage in OPEN_OPPORTUNITY_STAGES
            and viewer.may_on_opportunity(OPPORTUNITY_CLOSE, opportunity))


def _won_initial(opportunity) -> dict:
    """The deal's expected amount and its currency, if it has them."""
    return {"amount": opportunity.amount, "currency": opportunity.currency}


def _convert_initial(lead, opportunity) -> dict:
    if opportunity is not None and opportunity.stage in OPEN_OPPORTUNITY_STAGES:
        return {"name": opportunity.name, "stage": opportunity.stage}
    return {"name": opportunity_name_default(lead)}


def _action_forms(request, lead, viewer, *, opportunity, offers: set[str], bound: dict | None = None) -> dict:
    """The unbound forms of the actions on offer (each query only when its form is shown), then the bound one."""
    owner = {"expected_owner_id": lead.owner_id or ""}
    reasons = _reasons(request.tenant) if offers & {"reject", "disqualify"} else []
    makers = {
        "log": lambda: forms.ActivityForm(initial=owner | {"kind": "call"}, outcomes=_outcomes(request.tenant)),
        "accept": lambda: forms.AcceptForm(initial=owner),
        "reject": lambda: forms.ReasonForm(initial=owner, reasons=reasons, prefix="reject"),
        "qualify": lambda: forms.QualifyForm(initial=owner),
        "disqualify": lambda: forms.ReasonForm(initial=owner, reasons=reasons, prefix="disqualify"),
        "recycle": lambda: forms.RecycleForm(initial=owner),
        "edit": lambda: forms.LeadEditForm(lead=lead),
        "convert": lambda: forms.ConvertForm(initial=owner | _convert_initial(lead, opportunity), prefix="convert"),
        "reassign": lambda: forms.ReassignForm(initial=owner, members=_reassign_targets(request, lead)),
        "enroll": lambda: forms.EnrollForm(sequences=sequences_for_manual_enrolment(tenant=request.tenant),
                                           prefix="enroll"),
        "won": lambda: forms.CloseWonForm(initial=_won_initial(opportunity), prefix="won"),
        "lost": lambda: forms.CloseLostForm(reasons=_lost_reasons(request.tenant), prefix="lost"),
    }
    built = {name: make() for name, make in makers.items() if name in offers}
    built.update(bound or {})
    if "stop-nurture" in built:  # template variables cannot hold a hyphen
        built["stop_nurture"] = built.pop("stop-nurture")
    return built


def _lead_page(request, lead, viewer, *, bound: dict | None = None, status: int = 200, open_action: str = "",
               can_submit_refused: bool = True):
    """The lead page; read-only (no forms but a refused one) when the viewer only worked the lead before."""
    read_only = getattr(lead, "former_access", False)
    explanation = None
    if lead.score is not None and lead.score_breakdown is not None:
        labels = rule_labels(tenant=lead.tenant_id, model_ids=[lead.scoring_model_id]) if lead.scoring_model_id else {}
        explanation = score_explain(lead=lead, labels=labels.get(lead.scoring_model_id, {}))
    opportunity = lead_opportunity(lead=lead)
    offers = lead_offers(lead=lead, opportunity=opportunity, can_reassign=viewer.can_reassign,
                         may_convert=_may_convert(viewer, lead), read_only=read_only)
    offers = {name for name in offers if name not in ACTIONS or ACTIONS[name].allowed(viewer, lead)}  # the matrix
    if not read_only and _may_close(viewer, lead, opportunity):  # the deal's close, on its card
        offers |= {"won", "lost"}
    action_forms = _action_forms(request, lead, viewer, opportunity=opportunity, offers=offers, bound=bound)
    context = {
        "lead": lead,
        "class_label": CLASS_LABELS.get(lead.lead_class, lead.lead_class),
        "account": lead_account_leads(viewer=viewer, lead=lead),
        "explanation": explanation,
        "timeline": lead_timeline(lead=lead),
        "sla": lead_sla_state(lead=lead),
        "opportunity": opportunity,
        "enrollments": lead_enrollments(lead=lead),
        "forms": action_forms,
        "offers": {name: True for name in offers},
        "panels": action_panels(forms=action_forms, offers=offers, lead=lead, opportunity=opportunity,
                                refused=open_action, can_submit_refused=can_submit_refused),
        "open_action": open_action,
        "is_open": lead.status in OPEN_STATUSES,
        "closed_note": closed_note(lead, opportunity),
        "read_only": read_only,
        "ownership": lead_ownership(lead=lead) if read_only else None,
        "may_review_bounce": not read_only and ACTIONS["dismiss-bounce"].allowed(viewer, lead),
        "has_bant": any((lead.budget, lead.authority, lead.need, lead.timeline)) or opportunity is not None,
        **_lead_duplicates(viewer, lead, read_only=read_only),
    }
    return render(request, "workspace/lead_page.html", context, status=status)


def _lead_duplicates(viewer, lead, *, read_only: bool) -> dict:
    """For a reviewer (managers, admins): the lead's open possible duplicates, and its merges they may undo."""
    if read_only or not viewer.may(DUPLICATES_REVIEW):
        return {"duplicate_pairs": [], "undoable_pair_ids": set()}
    pairs = list(duplicate_pairs_for_viewer(viewer=viewer, status=None, lead_id=lead.pk)[:20])
    archived = LeadStatus.ARCHIVED
    return {
        "duplicate_pairs": [p for p in pairs if p.status == DuplicateStatus.OPEN
                            and archived not in (p.lead.status, p.other.status)],
        "undoable_pair_ids": {p.pk for p in pairs if p.status == DuplicateStatus.MERGED and p.survivor_id == lead.pk},
    }


@require_GET
@workspace_required
def lead_page(request, lead_id):
    """The lead page; read-only for a member who owned or worked the lead before (e.g. just handed it off)."""
    viewer = _viewer(request)
    lead = lead_get_for_viewer(viewer=viewer, lead_id=lead_id, allow_former=True)
    # `?open=edit` (the bounce banner's "Fix the email") shows the page with the edit form unfolded.
    return _lead_page(request, lead, viewer, open_action="edit" if request.GET.get("open") == "edit" else "")


def _apply_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError beside the form's fields (the rest above the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            target = field if field in form.fields and not form.fields[field].widget.is_hidden else None
            for message in errors:
                form.add_error(target, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def _focus_first_error(form) -> None:
    """The first field with an error gets the focus when the page (or its htmx swap) shows the form again."""
    for name in form.errors:
        field = form.fields.get(name)
        if field is not None and not field.widget.is_hidden:
            field.widget.attrs["autofocus"] = True
            return


# --- The lead page's actions: one row each (form, service call, where to go after) -----------------


def _edit(form, *, lead, actor, request) -> str:
    changes = form.changes()
    if not changes:
        return "Nothing to save: the details are unchanged."
    lead_update(lead=lead, data=changes, actor=actor, expected_updated_at=form.cleaned_data["expected_updated_at"])
    return "Details saved."


def _enroll(form, *, lead, actor, request) -> str:
    sequence = Sequence.objects.for_tenant(request.tenant).filter(pk=form.cleaned_data["sequence"]).first()
    if sequence is None:
        raise ValidationError({"sequence": ["Choose a sequence of this workspace."]})
    lead_enroll(lead=lead, sequence=sequence, actor=actor)
    return f"Enrolled in “{sequence.name}”."


def _stop_nurture(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    enrollment = (Enrollment.objects.for_tenant(request.tenant).filter(lead=lead, pk=data["enrollment"])
                  .select_related("sequence").first())
    if enrollment is None:
        raise ValidationError("This enrolment is not on this lead; reload the page.")
    enrollment_stop(enrollment=enrollment, actor=actor, note=data["note"])
    return f"Stopped “{enrollment.sequence.name}”."


def _log(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    activity, _ = activity_log(lead=lead, kind=data["kind"], actor=actor, subject=data["subject"], body=data["body"],
                               outcome=data["outcome"], expected_owner_id=form.expected_owner())
    return form.logged_message(activity)


def _accept(form, *, lead, actor, request) -> str:
    accepted = lead_accept(lead=lead, actor=actor, expected_owner_id=form.expected_owner())
    if accepted.status == "converted":
        opportunity = lead_opportunity(lead=accepted)
        if opportunity is not None:
            whose = ("yours" if opportunity.owner_id in (None, actor.user_id)
                     else f"{opportunity.owner.get_full_name() or opportunity.owner.get_username()}'s")
            return f"Lead accepted and converted: opportunity “{opportunity.name}” is {whose}."
    return "Lead accepted."


def _reject(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    lead_reject(lead=lead, actor=actor, reason_code=data["reason"], note=data["note"],
                expected_owner_id=form.expected_owner())
    return "Lead rejected and sent back."


def _disqualify(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    lead_disqualify(lead=lead, actor=actor, reason_code=data["reason"], note=data["note"],
                    expected_owner_id=form.expected_owner())
    return "Lead disqualified."


class Attention(str):
    """A flash that reports an action done but not all it was meant to do (shown as a warning, not a success)."""


def _qualify(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    opportunity = lead_qualify(lead=lead, actor=actor, budget=data["budget"], authority=data["authority"],
                               need=data["need"], timeline=data["timeline"], expected_owner_id=form.expected_owner())
    handoff = opportunity_handoff(opportunity=opportunity)
    message = handoff_message(handoff)
    return message if handoff.placed else Attention(message)


def _recycle(form, *, lead, actor, request) -> str:
    lead_recycle(lead=lead, actor=actor, reason=form.cleaned_data["reason"], expected_owner_id=form.expected_owner())
    return "Lead recycled to nurture."


def _convert(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    opportunity = lead_convert(lead=lead, actor=actor, name=data["name"], stage=data["stage"],
                               expected_owner_id=form.expected_owner())
    return f"Lead converted: opportunity “{opportunity.name}” ({opportunity.get_stage_display()})."


def _close(form, *, lead, actor, request, stage: str, data: dict) -> str:
    opportunity = lead_opportunity(lead=lead)
    if opportunity is None:
        raise ValidationError("This lead has no opportunity to close; reload the page.")
    closed_at = form.closed_at()
    if closed_at is not None:
        data["closed_at"] = closed_at
    opportunity = opportunity_update(opportunity=opportunity, actor=actor, data={"stage": stage, **data},
                                     source=OutcomeSource.UI)
    return f"Deal “{opportunity.name}” closed {opportunity.get_stage_display().lower().removeprefix('closed ')}."


def _won(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    return _close(form, lead=lead, actor=actor, request=request, stage=OpportunityStage.WON,
                  data={"amount": data["amount"], "currency": data["currency"]})


def _lost(form, *, lead, actor, request) -> str:
    return _close(form, lead=lead, actor=actor, request=request, stage=OpportunityStage.LOST,
                  data={"lost_reason": form.cleaned_data["lost_reason"]})


def _dismiss_bounce(form, *, lead, actor, request) -> str:
    if not lead_email_bounce_dismiss(lead=lead, actor=actor):
        return "Nothing to dismiss: the email is not flagged as bounced."
    return "Bounce flag dismissed: the address stays on the suppression list until removed there."


def _reassign(form, *, lead, actor, request) -> str:
    data = form.cleaned_data
    to_user = None
    if data["to_user"] != forms.THROUGH_THE_RULES:
        member = tenant_member_get(tenant=request.tenant, user_id=data["to_user"])
        if member is None:
            raise ValidationError({"to_user": ["Choose a member of this workspace."]})
        to_user = member.user
    lead_reassign(lead=lead, actor=actor, to_user=to_user, reason=data["reason"], expected_owner_id=form.expected_owner())
    return "Lead reassigned."


@dataclass(frozen=True)
class LeadAction:
    """One action of the lead page: its bound form, the service call (returns the flash message), whether
    the lead may leave the member's queue after it (then back to the queue), and who may use it: the
    permission-matrix action it `needs` (leadmgmt.tenancy.roles, with its object rule) and any `extra` rule."""

    form: Callable[[HttpRequest, Lead], Any]
    run: Callable[..., str]
    leaves_queue: bool = False
    needs: str = LEAD_WORK
    extra: Callable[[LeadViewer, Lead], bool] = lambda viewer, lead: True

    def allowed(self, viewer: LeadViewer, lead: Lead) -> bool:
        return viewer.may_on(self.needs, lead) and self.extra(viewer, lead)


ACTIONS: dict[str, LeadAction] = {
    "log": LeadAction(lambda request, lead: forms.ActivityForm(request.POST, outcomes=_outcomes(request.tenant)), _log),
    "accept": LeadAction(lambda request, lead: forms.AcceptForm(request.POST), _accept),
    "reject": LeadAction(lambda request, lead: forms.ReasonForm(request.POST, reasons=_reasons(request.tenant),
                                                                prefix="reject"), _reject, leaves_queue=True),
    "qualify": LeadAction(lambda request, lead: forms.QualifyForm(request.POST), _qualify, leaves_queue=True),
    "disqualify": LeadAction(lambda request, lead: forms.ReasonForm(request.POST, reasons=_reasons(request.tenant),
                                                                    prefix="disqualify"), _disqualify),
    "recycle": LeadAction(lambda request, lead: forms.RecycleForm(request.POST), _recycle, leaves_queue=True),
    "convert": LeadAction(lambda request, lead: forms.ConvertForm(request.POST, prefix="convert"), _convert,
                          extra=lambda viewer, lead: _may_convert(viewer, lead)),
    "reassign": LeadAction(lambda request, lead: forms.ReassignForm(request.POST, members=_reassign_targets(request, lead, keep_owner=True)),
                           _reassign, leaves_queue=True, needs=LEAD_REASSIGN),
    "edit": LeadAction(lambda request, lead: forms.LeadEditForm(request.POST, lead=lead), _edit, needs=LEAD_EDIT),
    "enroll": LeadAction(lambda request, lead: forms.EnrollForm(
        request.POST, sequences=sequences_for_manual_enrolment(tenant=request.tenant), prefix="enroll"), _enroll,
        needs=LEAD_NURTURE),
    "dismiss-bounce": LeadAction(lambda request, lead: forms.BounceDismissForm(request.POST), _dismiss_bounce,
                                 needs=LEAD_EDIT),
    "won": LeadAction(lambda request, lead: forms.CloseWonForm(request.POST, prefix="won"), _won,
                      needs=OPPORTUNITY_CLOSE, extra=lambda viewer, lead: _may_close(viewer, lead)),
    "lost": LeadAction(lambda request, lead: forms.CloseLostForm(request.POST, reasons=_lost_reasons(request.tenant),
                                                                 prefix="lost"), _lost,
                       needs=OPPORTUNITY_CLOSE, extra=lambda viewer, lead: _may_close(viewer, lead)),
    "stop-nurture": LeadAction(lambda request, lead: forms.StopNurtureForm(request.POST, prefix="stop"),
                               _stop_nurture, needs=LEAD_NURTURE),
}


def _after_success(request, url: str) -> HttpResponse:
    """A redirect; for htmx, HX-Location: htmx loads `url` and swaps its main content in place (flash included)."""
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Location"] = json.dumps({"path": url, "target": "#content", "select": "#content",
                                              "swap": "outerHTML"})
        return response
    return HttpResponseRedirect(url)


@require_POST
@workspace_required
def lead_action(request, lead_id, action):
    """One action of the lead page (POST + CSRF): success → redirect with a flash; invalid → the page, 400.

    A refused stale action (the lead changed hands meanwhile) comes back with what was typed and the reason, also
    for a member who can now only read the lead (its former owner); anyone else gets the 404 of a missing lead.
    An htmx post (the edit form) gets HX-Location instead of the redirect, and its 400 replaces the form."""
    entry = ACTIONS.get(action)
    if entry is None:
        raise Http404("No such action.")
    viewer = _viewer(request)
    lead = lead_get_for_viewer(viewer=viewer, lead_id=lead_id, allow_former=True)
    if not lead.former_access and not entry.allowed(viewer, lead):
        raise Http404("No such action.")
    form = entry.form(request, lead)
    can_act = not lead.former_access
    if not can_act:
        form.is_valid()  # the typed values are shown again, valid or not
        refuse_stale(form, lead, can_act=False)
    elif form.is_valid():
        refusal = not_offered(action, form, lead)
        try:
            if refusal:
                raise ValidationError(refusal)
            message = entry.run(form, lead=lead, actor=Actor.for_user(request.user), request=request)
        except ValidationError as exc:
            if is_stale(exc):
                lead = lead_get_for_viewer(viewer=viewer, lead_id=lead_id, allow_former=True)
                can_act = not lead.former_access and entry.allowed(viewer, lead)
                refuse_stale(form, lead, can_act=can_act)
            else:
                _apply_errors(form, exc)
        else:
            level = messages.WARNING if isinstance(message, Attention) else messages.SUCCESS
            if entry.leaves_queue:
                messages.add_message(request, level, flash_with_link(message, lead))
                return _after_success(request, reverse("queue"))
            messages.add_message(request, level, message)
            return _after_success(request, reverse("lead-page", args=[lead.pk]))
    _focus_first_error(form)
    messages.error(request, "The action was not applied: see the messages beside the fields.")
    lead = lead_get_for_viewer(viewer=viewer, lead_id=lead_id, allow_former=True)  # the state after any refusal
    return _lead_page(request, lead, viewer, bound={action: form}, status=400, open_action=action,
                      can_submit_refused=can_act)
