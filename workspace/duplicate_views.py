"""The merge review queue's pages (`/manager/duplicates/…`): possible-duplicate pairs of the manager's sight, one
pair side by side with a choice per field, merge, dismiss, and undo a merge (also offered on the lead's
timeline). The same role rule as the API (`duplicates.review`: managers and admins) and the same services."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.roles import DUPLICATES_REVIEW
from leadmgmt.urls_safe import safe_next_url
from leads.models import DuplicatePair, DuplicateStatus, DuplicateTier, Lead
from leads.selectors import LeadViewer
from leads.services.duplicates import duplicate_pair_dismiss
from routing.notifications import lead_label

from .duplicate_selectors import duplicate_pair_for_viewer, duplicate_pairs_for_viewer
from .manager_views import _context, _page, manager_view
from .services.duplicates import (
    MERGE_FIELDS,
    duplicate_merge,
    duplicate_merge_undo,
    merge_defaults,
    survivor_default,
)


def _reviewer(request, scope) -> LeadViewer:
    viewer = LeadViewer.from_request(request)
    if not viewer.may(DUPLICATES_REVIEW):
        raise PermissionDenied("Only managers and admins review possible duplicates.")
    return viewer


def _pair(viewer: LeadViewer, pair_id: int) -> DuplicatePair:
    try:
        return duplicate_pair_for_viewer(viewer=viewer, pair_id=pair_id)
    except DuplicatePair.DoesNotExist as exc:
        raise Http404("No such pair.") from exc


def _rows(pair: DuplicatePair, survivor: Lead, picks: dict[str, str]) -> list[dict]:
    """Field by field: both values, and which side is picked ("lead" or "other" of the pair)."""
    rows = []
    for name in MERGE_FIELDS:
        left, right = getattr(pair.lead, name), getattr(pair.other, name)
        if left in (None, "") and right in (None, ""):
            continue
        picked_survivor = picks.get(name, "survivor") == "survivor"
        side = "lead" if picked_survivor == (survivor.pk == pair.lead_id) else "other"
        rows.append({"name": name, "label": str(Lead._meta.get_field(name).verbose_name).capitalize(),
                     "lead": left, "other": right, "same": left == right, "picked": side})
    return rows


def _compare(request, scope, pair, *, survivor=None, picks=None, errors=None, status=200):
    survivor = survivor or survivor_default(lead=pair.lead, other=pair.other)
    other = pair.other if survivor.pk == pair.lead_id else pair.lead
    picks = picks if picks is not None else merge_defaults(survivor=survivor, other=other)
    context = _context(scope, "duplicates", pair=pair, survivor=survivor, rows=_rows(pair, survivor, picks),
                       errors=errors or [], can_merge=pair.status == DuplicateStatus.OPEN)
    return render(request, "workspace/manager/manager_duplicate.html", context, status=status)


@require_GET
@manager_view
def manager_duplicates(request, scope):
    viewer = _reviewer(request, scope)
    tier = request.GET.get("tier", "")
    tier = tier if tier in DuplicateTier.values else ""
    page = _page(request, duplicate_pairs_for_viewer(viewer=viewer, tier=tier))
    return render(request, "workspace/manager/manager_duplicates.html",
                  _context(scope, "duplicates", page=page, tier=tier, tiers=DuplicateTier.choices,
                           query=f"tier={tier}" if tier else ""))


@require_GET
@manager_view
def manager_duplicate(request, scope, pair_id):
    viewer = _reviewer(request, scope)
    return _compare(request, scope, _pair(viewer, pair_id))


@require_POST
@manager_view
def manager_duplicate_merge(request, scope, pair_id):
    viewer = _reviewer(request, scope)
    pair = _pair(viewer, pair_id)
    survivor_id = request.POST.get("survivor") or None
    survivor = next((lead for lead in (pair.lead, pair.other) if str(lead.pk) == str(survivor_id)), None)
    # Each field's radio names the side of the pair ("lead" or "other"); the service wants survivor/other.
    picks = {}
    for name in MERGE_FIELDS:
        side = request.POST.get(f"pick_{name}")
        if side in ("lead", "other") and survivor is not None:
            picks[name] = "survivor" if (side == "lead") == (survivor.pk == pair.lead_id) else "other"
    try:
        result = duplicate_merge(pair=pair, actor=Actor.for_user(request.user), survivor_id=survivor_id, picks=picks)
    except ValidationError as exc:
        errors = [message for messages_ in exc.message_dict.values() for message in messages_]
        return _compare(request, scope, _pair(viewer, pair_id), survivor=survivor, picks=picks or None,
                        errors=errors, status=400)
    messages.success(request, f"Merged {lead_label(result.merged)} into this lead. Its history is here now; "
                              "you can undo the merge from the timeline.")
    return redirect("lead-page", lead_id=result.survivor.pk)


@require_POST
@manager_view
def manager_duplicate_dismiss(request, scope, pair_id):
    viewer = _reviewer(request, scope)
    pair = _pair(viewer, pair_id)
    if duplicate_pair_dismiss(pair=pair, actor=Actor.for_user(request.user)):
        messages.success(request, "Dismissed: these two leads will not be suggested as duplicates again.")
    else:
        messages.info(request, f"This pair was already {pair.get_status_display().lower()}.")
    return redirect("manager:duplicates")


@require_POST
@manager_view
def manager_duplicate_undo(request, scope, pair_id):
    viewer = _reviewer(request, scope)
    pair = _pair(viewer, pair_id)
    fallback = reverse("lead-page", kwargs={"lead_id": pair.survivor_id}) if pair.survivor_id else \
        reverse("manager:duplicates")
    try:
        duplicate_merge_undo(pair=pair, actor=Actor.for_user(request.user))
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    else:
        messages.success(request, "Merge undone: both leads are back as they were, and the pair is open again.")
    return redirect(safe_next_url(request, request.POST.get("next"), fallback=fallback, within="/"))
