"""Reads of the merge review queue: the possible-duplicate pairs a member may review (both leads in their sight)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from leads.models import DuplicatePair, DuplicateStatus, LeadStatus
from leads.selectors import LeadViewer, lead_list


def duplicate_pairs_for_viewer(*, viewer: LeadViewer, status: str | None = DuplicateStatus.OPEN, tier: str = "",
                               lead_id=None) -> QuerySet[DuplicatePair]:
    """Pairs whose two leads the viewer sees, newest first, with both leads and their owners joined (no N+1). An
    open pair with an archived lead is left out (it cannot be merged until the lead is restored)."""
    visible = lead_list(viewer=viewer).values("pk")
    pairs = (DuplicatePair.objects.for_tenant(viewer.tenant).filter(lead__in=visible, other__in=visible)
             .select_related("lead", "lead__owner", "other", "other__owner", "resolved_by")
             .order_by("-detected_at", "-pk"))
    if status:
        pairs = pairs.filter(status=status)
        if status == DuplicateStatus.OPEN:
            pairs = pairs.exclude(lead__status=LeadStatus.ARCHIVED).exclude(other__status=LeadStatus.ARCHIVED)
    if tier:
        pairs = pairs.filter(tier=tier)
    if lead_id is not None:
        pairs = pairs.filter(Q(lead_id=lead_id) | Q(other_id=lead_id))
    return pairs


def duplicate_pair_for_viewer(*, viewer: LeadViewer, pair_id: int) -> DuplicatePair:
    """One pair the viewer may review (DuplicatePair.DoesNotExist otherwise: another tenant's, out of sight)."""
    return duplicate_pairs_for_viewer(viewer=viewer, status=None).get(pk=pair_id)
