"""Manager pages (`/manager/…`): team queue, Unassigned, Escalations, Aging, Hot, rep load and availability,
reassignment. Views call services and selectors only; every read goes through the manager's scope
(their teams, or the whole tenant for admins), so another team's or tenant's rep or lead is a 404."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.roles import LEAD_EXPORT, may
from leadmgmt.urls_safe import safe_next_url
from routing.services.assign import lead_reassign, leads_reassign_bulk
from routing.services.availability import membership_availability_set

from .export import export_chooser
from .manager_bulk import bulk_report, bulk_token, bulk_token_problem
from .manager_forms import (
    AvailabilityForm,
    BulkReassignForm,
    QueueFilterForm,
    QuickAvailabilityForm,
    ReassignForm,
    RowReassignForm,
)
from .manager_selectors import (
    aging_leads,
    assignable_reps,
    bounced_leads,
    breached_clocks,
    bulk_move_preview,
    hot_leads,
    manager_scope,
    recent_escalations,
    rep_load,
    reps_for_lead,
    scope_lead_get,
    scope_membership_get,
    scope_reps,
    team_queue,
    unassigned_queue,
)

PAGE_SIZE = 25


def manager_view(view):
    """Signed in, and a manager or admin of the active tenant (else 403); passes the scope."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        scope = manager_scope(tenant=getattr(request, "tenant", None), membership=getattr(request, "membership", None))
        return view(request, scope, *args, **kwargs)

    return wrapped


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _context(scope, active: str, **extra) -> dict:
    return {"scope": scope, "manager_nav": active, "now": timezone.now(), **extra}


MANAGER_PAGES = "/manager/"


def _safe_next(request, fallback: str, *, value: str | None = None) -> str:
    """Where a manager form goes back to (its posted `next`, or `value`): a manager page of this site, else
    `fallback` (leadmgmt.urls_safe)."""
    return safe_next_url(request, request.POST.get("next") if value is None else value, fallback=fallback,
                         within=MANAGER_PAGES)


def _errors_to_form(form, error: ValidationError, field_map: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError beside the form's fields (unknown keys above the form)."""
    field_map = field_map or {}
    for key, msgs in (error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]):
        field = field_map.get(key, key)
        form.add_error(field if field in form.fields else None, msgs)


def _user(user_id):
    return get_user_model().objects.filter(pk=int(user_id)).first() if user_id else None


def _row_controls(row: str, scope, *, reps=None) -> dict:
    """What each row's reassign control needs, built once per page (two queries, one given `reps`)."""
    return {"row_list": row, "assignable": assignable_reps(scope=scope, at=timezone.now(), reps=reps)}


# --- lists ---------------------------------------------------------------------------------------------


@require_GET
@manager_view
def manager_queue(request, scope):
    reps = scope_reps(scope=scope)
    filters = QueueFilterForm(request.GET or None, reps=reps)
    rep = filters.value("rep")
    page = _page(request, team_queue(scope=scope, owner_id=int(rep) if rep else None,
                                     status=filters.value("status") or None))
    query = urlencode({k: v for k, v in (("rep", rep), ("status", filters.value("status"))) if v})
    context = _context(scope, "queue", page=page, filters=filters, query=query, filtered=bool(query),
                       **_row_controls("queue", scope, reps=reps))
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        return render(request, "workspace/manager/_queue_results.html", context)  # filters and pages swap the results only
    if may(scope.membership.role, LEAD_EXPORT):
        context.update(export_chooser(filters=[(k, v) for k, v in (("rep", rep), ("status", filters.value("status"))) if v]))
    return render(request, "workspace/manager/manager_queue.html", context)


@require_GET
@manager_view
def manager_unassigned(request, scope):
    page = _page(request, unassigned_queue(scope=scope))
    context = _context(scope, "unassigned", page=page, **_row_controls("unassigned", scope))
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        return render(request, "workspace/manager/_unassigned_results.html", context)  # its live poll
    return render(request, "workspace/manager/manager_unassigned.html", context)


@require_GET
@manager_view
def manager_escalations(request, scope):
    page = _page(request, breached_clocks(scope=scope))
    return render(request, "workspace/manager/manager_escalations.html", _context(
        scope, "escalations", page=page, escalations=recent_escalations(scope=scope),
        **_row_controls("escalations", scope)))


@require_GET
@manager_view
def manager_aging(request, scope):
    page = _page(request, aging_leads(scope=scope))
    return render(request, "workspace/manager/manager_aging.html", _context(scope, "aging", page=page,
                                                                  **_row_controls("aging", scope)))


@require_GET
@manager_view
def manager_bounced(request, scope):
    """Bounced addresses: the scope's leads whose email hard-bounced, to correct or dismiss on the lead page."""
    page = _page(request, bounced_leads(scope=scope))
    return render(request, "workspace/manager/manager_bounced.html", _context(scope, "bounced", page=page))


@require_GET
@manager_view
def manager_hot(request, scope):
    """The Hot list: open hot leads of the scope, owned or Unassigned, the hottest and most urgent first."""
    page = _page(request, hot_leads(scope=scope))
    context = _context(scope, "hot", page=page, **_row_controls("hot", scope))
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        return render(request, "workspace/manager/_hot_results.html", context)  # its live poll
    return render(request, "workspace/manager/manager_hot.html", context)


def _bulk_choices(loads) -> dict:
    """Whose leads may move (every rep of the scope) and to whom (those who can take leads now)."""
    return {"reps": [load.membership for load in loads],
            "targets": [load.membership for load in loads if load.ineligible_because is None]}


def _reps_page(request, scope, bulk_form=None, status=200, loads=None):
    loads = rep_load(scope=scope, at=timezone.now()) if loads is None else loads
    bulk_form = bulk_form or BulkReassignForm(**_bulk_choices(loads))
    return render(request, "workspace/manager/manager_reps.html", _context(scope, "reps", loads=loads, bulk_form=bulk_form),
                  status=status)


@require_GET
@manager_view
def manager_reps(request, scope):
    return _reps_page(request, scope)


# --- actions ---------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@manager_view
def manager_lead_reassign(request, scope, lead_id):
    """Assign or reassign one lead: to a rep of the scope, or through the rules without its owner."""
    lead = scope_lead_get(scope=scope, lead_id=lead_id)
    reps = reps_for_lead(reps=assignable_reps(scope=scope, at=timezone.now()), lead=lead, exclude_owner=False)
    default_reason = "Reassigned by a manager" if lead.owner_id else "Assigned from Unassigned"
    fallback = "/manager/" if lead.owner_id else "/manager/unassigned/"
    if request.method == "GET":
        form = ReassignForm(reps=[m for m in reps if m.user_id != lead.owner_id],
                            initial={"expected_owner_id": lead.owner_id or "",
                                     "next": _safe_next(request, fallback, value=request.GET.get("next", ""))})
        return render(request, "workspace/manager/manager_reassign.html",
                      _context(scope, "", lead=lead, form=form, cancel_url=form.initial["next"]))
    form = ReassignForm(request.POST, reps=reps, default_reason=default_reason)
    if form.is_valid():
        data = form.cleaned_data
        to_user = _user(data["to_user"])
        try:
            assignment = lead_reassign(lead=lead, actor=Actor.for_user(request.user), to_user=to_user,
                                       reason=data["reason"], expected_owner_id=data["expected_owner_id"])
        except ValidationError as error:
            _errors_to_form(form, error, {"owner": None})
        else:
            label = str(lead) or lead.email
            if assignment.owner is not None:
                messages.success(request, f"{label} now belongs to {assignment.owner.get_username()}.")
            else:
                messages.warning(request, f"{label} is still unassigned: {assignment.reason}")
            return redirect(_safe_next(request, fallback))
    # Cancel goes back only to a manager page of this site: a posted `next` is never reflected as it came.
    return render(request, "workspace/manager/manager_reassign.html",
                  _context(scope, "", lead=lead, form=form, cancel_url=_safe_next(request, fallback)), status=400)


@require_http_methods(["GET", "POST"])
@manager_view
def manager_rep_availability(request, scope, membership_id):
    """A rep's available flag and out-of-office range."""
    membership = scope_membership_get(scope=scope, membership_id=membership_id)
    if request.method == "GET":
        form = AvailabilityForm(initial={
            "is_available": membership.is_available,
            "unavailable_from": membership.unavailable_from and timezone.localtime(membership.unavailable_from),
            "unavailable_until": membership.unavailable_until and timezone.localtime(membership.unavailable_until)})
        return render(request, "workspace/manager/manager_availability.html", _context(scope, "reps", rep=membership, form=form))
    form = AvailabilityForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            membership_availability_set(membership=membership, actor=Actor.for_user(request.user),
                                        is_available=data["is_available"], unavailable_from=data["unavailable_from"],
                                        unavailable_until=data["unavailable_until"])
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, f"Availability of {membership.user.get_username()} saved.")
            return redirect("manager:reps")
    return render(request, "workspace/manager/manager_availability.html", _context(scope, "reps", rep=membership, form=form),
                  status=400)


@require_POST
@manager_view
def manager_rep_toggle(request, scope, membership_id):
    """One click on the reps page: out of office from now on, or available again now."""
    membership = scope_membership_get(scope=scope, membership_id=membership_id)
    form = QuickAvailabilityForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose out of office or available.")
        return redirect("manager:reps")
    name = membership.user.get_username()
    actor = Actor.for_user(request.user)
    if form.cleaned_data["out_of_office"]:
        membership_availability_set(membership=membership, actor=actor, is_available=False)
        messages.success(request, f"{name} is out of office: routing skips them until they are back.")
    else:
        membership_availability_set(membership=membership, actor=actor, is_available=True, unavailable_from=None,
                                    unavailable_until=None)
        messages.success(request, f"{name} is available for new leads again.")
    return redirect("manager:reps")


@require_POST
@manager_view
def manager_reps_reassign(request, scope):
    """Every open lead of one rep of the scope, to another rep who can take leads or through the rules, in two
    steps: a POST previews which leads would move where; the second (`confirm`, the preview's `token` and the
    same choices) moves them and reports what moved where. A confirm that no longer matches its preview (the
    rep's leads changed, the token is old or forged) shows the preview again (409) and moves nothing."""
    loads = rep_load(scope=scope, at=timezone.now())
    form = BulkReassignForm(request.POST, **_bulk_choices(loads))
    if not form.is_valid():
        return _reps_page(request, scope, bulk_form=form, status=400, loads=loads)
    data = form.cleaned_data
    reps = {load.membership.user_id: load.membership for load in loads}
    from_rep = reps[data["from_user"]]
    to_rep = reps[data["to_user"]] if data["to_user"] is not None else None
    preview = bulk_move_preview(scope=scope, from_rep=from_rep, to_rep=to_rep, at=timezone.now())
    if not preview.rows:
        form.add_error("from_user", f"{from_rep.user.get_username()} has no open leads to move.")
    elif preview.refusal:
        form.add_error("to_user", preview.refusal)
    if form.errors:
        return _reps_page(request, scope, bulk_form=form, status=400, loads=loads)
    signed = {"viewer_id": scope.membership.pk, "from_user_id": from_rep.user_id,
              "to_user_id": to_rep.user_id if to_rep is not None else None, "reason": data["reason"],
              "lead_ids": preview.lead_ids}
    problem, status = None, 200
    if data["confirm"]:
        problem = bulk_token_problem(data["token"], **signed, from_name=from_rep.user.get_username())
        if problem is None:
            try:
                result = leads_reassign_bulk(tenant=scope.tenant, from_user=from_rep.user,
                                             to_user=to_rep.user if to_rep is not None else None,
                                             actor=Actor.for_user(request.user), reason=data["reason"])
            except ValidationError as error:
                _errors_to_form(form, error)
                return _reps_page(request, scope, bulk_form=form, status=400)
            report = bulk_report(result, from_user=from_rep.user, to_user=to_rep.user if to_rep else None)
            return render(request, "workspace/manager/manager_bulk_result.html",
                          _context(scope, "reps", report=report, from_rep=from_rep, to_rep=to_rep))
        status = 409
    return render(request, "workspace/manager/manager_bulk_preview.html", _context(
        scope, "reps", preview=preview, problem=problem, reason=data["reason"], token=bulk_token(**signed),
        from_user=from_rep.user_id, to_user=form["to_user"].value()), status=status)


# --- one click on a row ------------------------------------------------------------------------------------

# Per list: the row template, its column count, where a plain POST goes back to, and the rows it shows now.
ROWS = {
    "queue": ("workspace/manager/_row_queue.html", 6, "/manager/", lambda scope: team_queue(scope=scope)),
    "unassigned": ("workspace/manager/_row_unassigned.html", 5, "/manager/unassigned/",
                   lambda scope: unassigned_queue(scope=scope)),
    "escalations": ("workspace/manager/_row_escalation.html", 6, "/manager/escalations/",
                    lambda scope: breached_clocks(scope=scope)),
    "aging": ("workspace/manager/_row_aging.html", 5, "/manager/aging/", lambda scope: aging_leads(scope=scope)),
    "hot": ("workspace/manager/_row_queue.html", 6, "/manager/hot/", lambda scope: hot_leads(scope=scope)),
}


def _moved_message(lead, assignment) -> tuple[str, str]:
    label = str(lead) or lead.email
    if assignment.owner is not None:
        return "success", f"{label} now belongs to {assignment.owner.get_username()}."
    return "warning", f"{label} is still unassigned: {assignment.reason}"


def _row_response(request, scope, row: str, lead, *, assignable, form=None, notice=None, status=200):
    """The row as its list shows the lead now (new owner, or the refusal beside the control), or a one-cell
    row saying where the lead went when it left the list (assigned, SLA no longer breached, not aging)."""
    template, columns, fallback, rows = ROWS[row]
    found = rows(scope)
    found = found.filter(lead_id=lead.pk) if row == "escalations" else found.filter(pk=lead.pk)
    item = found.first()
    current = (item.lead if row == "escalations" else item) if item is not None else lead  # `lead`: as just saved
    context = _context(scope, row, row_list=row, assignable=assignable, row_form=form, notice=notice,
                       next_url=_safe_next(request, fallback), columns=columns, lead=current, clock=item)
    html = render_to_string(template if item is not None else "workspace/manager/_row_gone.html", context, request=request)
    return HttpResponse(html, status=status)


@require_POST
@manager_view
def manager_lead_reassign_row(request, scope, lead_id):
    """One click on a manager list's row: the lead to a rep the manager may assign to, or through the rules.

    htmx gets the row back (the new owner, the refusal beside the control, or the lead gone from the
    list); a plain POST goes back to the list with a flash, or to the reassign page when the choice is
    not valid."""
    lead = scope_lead_get(scope=scope, lead_id=lead_id)
    assignable = assignable_reps(scope=scope, at=timezone.now())
    form = RowReassignForm(request.POST, reps=reps_for_lead(reps=assignable, lead=lead, exclude_owner=False))
    row = form.row_name()
    htmx = bool(request.headers.get("HX-Request"))
    stale = False
    if form.is_valid():
        data = form.cleaned_data
        try:
            assignment = lead_reassign(lead=lead, actor=Actor.for_user(request.user), to_user=_user(data["to_user"]),
                                       reason=form.reason(), expected_owner_id=data["expected_owner_id"])
        except ValidationError as error:
            stale = hasattr(error, "error_dict") and "owner" in error.error_dict
            _errors_to_form(form, error, {"owner": None})
        else:
            level, message = _moved_message(lead, assignment)
            if htmx:
                return _row_response(request, scope, row, lead, assignable=assignable, notice=(level, message))
            getattr(messages, level)(request, message)
            return redirect(_safe_next(request, ROWS[row][2]))
    if htmx:
        return _row_response(request, scope, row, lead, assignable=assignable, form=form, status=400)
    if stale:  # without JS: back to the list, which shows the lead's owner now
        messages.error(request, f"{lead}: {' '.join(form.non_field_errors())}")
        return redirect(_safe_next(request, ROWS[row][2]))
    # Cancel goes back only to a manager page of this site: a posted `next` is never reflected as it came.
    return render(request, "workspace/manager/manager_reassign.html",
                  _context(scope, "", lead=lead, form=form, cancel_url=_safe_next(request, ROWS[row][2])), status=400)
