"""Reads of the leads app: which leads a member or API key may see, a lead's parts, stale signals.

Visibility by role: SDRs and AEs see the leads they own; a manager sees the leads owned by
members of their team, their own, and unassigned leads (the queue they distribute); admins,
marketing ops and API keys (`leads:read`) see every lead of the tenant. A lead outside that
scope is answered exactly like a missing one (404). The one exception is the lead page's read-only
view of a lead the member worked before (`lead_get_for_viewer(..., allow_former=True)`).
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import get_current_tenant
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import ApiKey, Membership, Role, Tenant
from leadmgmt.tenancy.roles import LEAD_REASSIGN, may, may_on_lead, principal_may

from .models import OPEN_STATUSES, Activity, Lead, Opportunity, OpportunityStage, Signal, Touch


@dataclass(frozen=True)
class LeadViewer:
    """Who reads leads: a member (the role decides the scope) or a tenant API key (all leads)."""

    tenant: Tenant
    membership: Membership | None = None
    api_key: ApiKey | None = None

    def __post_init__(self):
        if (self.membership is None) == (self.api_key is None):
            raise ValueError("A LeadViewer is either a membership or an API key.")
        owner = self.membership or self.api_key
        if owner.tenant_id != self.tenant.pk:
            raise ValueError("The membership or API key belongs to another tenant.")

    @classmethod
    def from_request(cls, request) -> LeadViewer:
        """The viewer of an authenticated API request (`HasTenant` has already checked it)."""
        if getattr(request, "api_key", None) is not None:
            return cls(tenant=request.tenant, api_key=request.api_key)
        return cls(tenant=request.tenant, membership=request.membership)

    @property
    def user(self):
        return self.membership.user if self.membership is not None else None

    @property
    def sees_all_leads(self) -> bool:
        return self.api_key is not None or self.membership.sees_all_leads

    def may(self, action: str) -> bool:
        """The permission matrix (leadmgmt.tenancy.roles) for this member's role or this key's scopes."""
        return principal_may(action=action, membership=self.membership, api_key=self.api_key)

    def may_on(self, action: str, lead: Lead) -> bool:
        """The matrix plus the object rule on a lead the viewer sees: reps act only on the leads they own."""
        return may_on_lead(action=action, owner_id=lead.owner_id, membership=self.membership, api_key=self.api_key)

    def may_on_opportunity(self, action: str, opportunity) -> bool:
        """The matrix plus the object rule on an opportunity the viewer sees: reps act on the opportunities of the
        leads they own, or that they own themselves (the AE of a handed-off deal)."""
        if self.may_on(action, opportunity.lead):
            return True
        return (self.membership is not None and self.may(action)
                and opportunity.owner_id is not None and opportunity.owner_id == self.membership.user_id)

    @property
    def can_reassign(self) -> bool:
        """Managers, admins and API keys (a key needs `leads:write` to do it; see `may(LEAD_REASSIGN)`)."""
        return self.api_key is not None or may(self.membership.role, LEAD_REASSIGN)


def viewer_for_user(*, user, tenant: Tenant | None = None) -> LeadViewer:
    """The viewer of a signed-in user in `tenant` (default: the tenant in context); 404 if not a member."""
    tenant = tenant or get_current_tenant()
    membership = (
        Membership.objects.for_tenant(tenant).select_related("tenant", "user").filter(user=user).first()
        if tenant is not None and user is not None and user.is_authenticated else None
    )
    if membership is None:
        raise Http404("No lead matches the given query.")
    return LeadViewer(tenant=tenant, membership=membership)


def _visible_q(viewer: LeadViewer) -> Q:
    if viewer.sees_all_leads:
        return Q()
    membership = viewer.membership
    mine = Q(owner_id=membership.user_id)
    if membership.role != Role.MANAGER:
        return mine
    # A manager sees their own team's leads and those of every team they manage (Team.manager),
    # plus unassigned ones: the same reach as the manager pages under /manager/.
    team_scope = mine | Q(owner__isnull=True)
    teams = Q(team__manager_id=membership.user_id)
    if membership.team_id is not None:
        teams |= Q(team_id=membership.team_id)
    team_members = Membership.objects.for_tenant(viewer.tenant.pk).filter(teams).values("user_id")
    return team_scope | Q(owner_id__in=team_members)


def lead_list(*, viewer: LeadViewer) -> QuerySet[Lead]:
    """The viewer's leads with owner and account joined (one query per page, whatever its size)."""
    return (
        Lead.objects.for_tenant(viewer.tenant)

        .filter(_visible_q(viewer))
        .select_related("owner", "account")
    )


def lead_get_for_viewer(*, viewer: LeadViewer, lead_id: uuid.UUID | str, allow_former: bool = False) -> Lead:
    """The lead if the viewer may see it; the same 404 when it is missing, not theirs, or another tenant's.

    `allow_former` (the lead page only: lists, queues and the API never pass it) also lets a member read a
    lead they worked before: one they owned or acted on (`lead_worked_by`), e.g. the SDR who just qualified
    it for an AE. The returned lead says which: `former_access` is True when it is readable only that way
    (the page is then read-only), False when it is in the viewer's scope.
    """
    try:
        lead_id = uuid.UUID(str(lead_id))
    except ValueError:
        raise Http404("No lead matches the given query.") from None
    lead = lead_list(viewer=viewer).filter(id=lead_id).first()
    if lead is not None:
        lead.former_access = False
        return lead
    if allow_former and viewer.membership is not None:
        lead = (Lead.objects.for_tenant(viewer.tenant).filter(id=lead_id)
                .select_related("owner", "account").first())
        if lead is not None and lead_worked_by(lead=lead, user_id=viewer.membership.user_id):
            lead.former_access = True
            return lead
    raise Http404("No lead matches the given query.")


def lead_worked_by(*, lead: Lead, user_id: int) -> bool:
    """Whether the user owned the lead at some point or acted on it, by its audit trail (one query): an
    assignment that gave it to them or took it from them (`owner` [before, after]), or any change they made
    (an activity, accept, reject, qualify, an edit, a reassignment)."""
    return AuditEvent.objects.for_tenant(lead.tenant_id).filter(object_type="leads.lead", object_id=str(lead.pk)).filter(Q(actor_user_id=user_id) | Q(changes__owner__contains=[user_id])).exists()


def lead_get_for_user(*, user, lead_id: uuid.UUID | str, tenant: Tenant | None = None) -> Lead:
    """`lead_get_for_viewer` for a signed-in member (UI code): tenant from context unless given."""
    return lead_get_for_viewer(viewer=viewer_for_user(user=user, tenant=tenant), lead_id=lead_id)


def opportunity_list(*, viewer: LeadViewer, filters: dict | None = None) -> QuerySet[Opportunity]:
    """The opportunities of the leads the viewer sees (and, for a member, those they own), newest first, with the
    lead, owner and lost reason joined (one query per page). `filters`: stage, owner (a user id), lead (an id),
    result ("won", "lost" or "open"), closed_from / closed_to (datetimes, inclusive)."""
    filters = filters or {}
    reach = Q(lead__in=lead_list(viewer=viewer).values("pk"))
    if not viewer.sees_all_leads:
        reach |= Q(owner_id=viewer.membership.user_id)
    opportunities = (Opportunity.objects.for_tenant(viewer.tenant).filter(reach)
                     .select_related("lead", "owner", "lost_reason").order_by("-created_at", "-id"))
    if filters.get("stage"):
        opportunities = opportunities.filter(stage=filters["stage"])
    if filters.get("owner") is not None:
        opportunities = opportunities.filter(owner_id=filters["owner"])
    if filters.get("lead") is not None:
        opportunities = opportunities.filter(lead_id=filters["lead"])
    result = filters.get("result")
    if result == "open":
        opportunities = opportunities.exclude(stage__in=[OpportunityStage.WON, OpportunityStage.LOST])
    elif result:
        opportunities = opportunities.filter(stage=result)
    if filters.get("closed_from") is not None:
        opportunities = opportunities.filter(closed_at__gte=filters["closed_from"])
    if filters.get("closed_to") is not None:
        opportunities = opportunities.filter(closed_at__lte=filters["closed_to"])
    return opportunities


def opportunity_get_for_viewer(*, viewer: LeadViewer, opportunity_id: int) -> Opportunity:
    """One opportunity the viewer sees; the same 404 when it is missing, out of reach or another tenant's."""
    opportunity = opportunity_list(viewer=viewer).filter(pk=opportunity_id).first()
    if opportunity is None:
        raise Http404("No opportunity matches the given query.")
    return opportunity


def lead_touches(*, lead: Lead) -> QuerySet[Touch]:
    return Touch.objects.for_tenant(lead.tenant_id).filter(lead=lead).select_related("form").order_by("-received_at", "-id")


def lead_signals(*, lead: Lead) -> QuerySet[Signal]:
    return Signal.objects.for_tenant(lead.tenant_id).filter(lead=lead).order_by("-occurred_at", "-id")


def lead_activities(*, lead: Lead) -> QuerySet[Activity]:
    return Activity.objects.for_tenant(lead.tenant_id).filter(lead=lead).select_related("actor").order_by("-occurred_at", "-id")


def lead_history(*, lead: Lead) -> QuerySet[AuditEvent]:
    """The audit trail of the lead itself (edits, assignments, stage changes, processed signals)."""
    return AuditEvent.objects.for_tenant(lead.tenant_id).filter(object_type="leads.lead", object_id=str(lead.pk)).order_by("-at", "-id")


def signals_unprocessed_by_tenant(*, received_before: dt.datetime, limit: int = 10_000) -> dict[int, list[int]]:
    """Signals of known leads still unprocessed after `received_before`, grouped by tenant id.

    The one deliberate cross-tenant read of this module: the beat sweep that recovers
    processing tasks lost by the broker or a killed worker.
    """
    with cross_tenant("sweep"):
        rows = list(
            Signal.objects.unscoped()
            .filter(processed_at__isnull=True, lead__isnull=False, received_at__lt=received_before)
            .order_by("received_at", "id")
            .values_list("tenant_id", "id")[:limit]
        )
    grouped: dict[int, list[int]] = defaultdict(list)
    for tenant_id, pk in rows:
        grouped[tenant_id].append(pk)
    return dict(grouped)


def tenants_with_attachable_signals() -> list[int]:
    """Tenant ids having a pending signal whose email is now a lead (cross-tenant, for the sweep)."""
    lead = Lead.objects.for_tenant(OuterRef("tenant_id")).filter(email=OuterRef("email"))
    with cross_tenant("sweep"):
        return list(
            Signal.objects.unscoped()
            .filter(lead__isnull=True).exclude(email="")
            .filter(Exists(lead))
            .values_list("tenant_id", flat=True)
            .distinct()
        )


# --- The rep's queue (UI, issue 5) ---


def lead_queue(*, tenant: Tenant, user, filters: dict | None = None) -> QuerySet[Lead]:
    """The user's open leads, next to work first: hot leads on top, then SLA due time (none last), then
    score (high first). One query; the rep's open leads come from `lead_tenant_owner_status`, and sorting
    a rep's few hundred rows needs no index of its own (nor one more index write per re-score).

    `filters` (all optional, already cleaned): status, band, lead_class, source, q (name/email/company words).
    """
    from django.db.models import F

    filters = filters or {}
    queryset = Lead.objects.for_tenant(tenant).filter(owner_id=user.pk, status__in=OPEN_STATUSES)
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("band"):
        queryset = queryset.filter(band__iexact=filters["band"])
    if filters.get("lead_class"):
        queryset = queryset.filter(lead_class=filters["lead_class"])
    if filters.get("source"):
        queryset = queryset.filter(source__iexact=filters["source"])
    for word in (filters.get("q") or "").split()[:5]:
        queryset = queryset.filter(
            Q(first_name__icontains=word) | Q(last_name__icontains=word)
            | Q(email__icontains=word) | Q(company__icontains=word)
        )
    return queryset.select_related("account").order_by(
        F("is_hot").desc(), F("sla_due_at").asc(nulls_last=True), F("score").desc(nulls_last=True), "created_at", "id"
    )


def lead_queue_facets(*, tenant: Tenant, user) -> dict[str, list[str]]:
    """The distinct sources and bands among the user's open leads (filter choices), in one query."""
    rows = (
        Lead.objects.for_tenant(tenant).filter(owner_id=user.pk, status__in=OPEN_STATUSES)
        .order_by().values_list("source", "band").distinct()
    )
    sources, bands = set(), set()
    for source, band in rows:
        if source:
            sources.add(source)
        if band:
            bands.add(band)
    return {"sources": sorted(sources), "bands": sorted(bands)}


def lead_account_leads(*, viewer: LeadViewer, lead: Lead, limit: int = 10) -> dict:
    """The lead's account and up to `limit` of its other leads (newest first), each marked as openable by the
    viewer or not; at most two queries, none without an account."""
    if lead.account_id is None:
        return {"account": None, "leads": [], "total": 0}
    others = Lead.objects.for_tenant(lead.tenant_id).filter(account_id=lead.account_id).exclude(pk=lead.pk)
    rows = list(others.select_related("owner").order_by("-created_at", "id")[:limit])
    visible = set(lead_list(viewer=viewer).filter(account_id=lead.account_id, pk__in=[r.pk for r in rows])
                  .values_list("pk", flat=True)) if rows else set()
    for row in rows:
        row.viewer_may_open = row.pk in visible
    return {"account": lead.account, "leads": rows, "more": len(rows) == limit}


def tenant_members(*, tenant: Tenant) -> list[Membership]:
    """The tenant's active members with their users (reassignment targets)."""
    return list(Membership.objects.for_tenant(tenant).filter(is_active=True).select_related("user")
                .order_by("user__username"))


def tenant_member_get(*, tenant: Tenant, user_id) -> Membership | None:
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        return None
    return (Membership.objects.for_tenant(tenant).filter(user_id=user_id, is_active=True)
            .select_related("user").first())


def lead_opportunity(*, lead: Lead):
    """The lead's open opportunity, else its latest closed one (won/lost), else None: one query."""
    from django.db.models import BooleanField, ExpressionWrapper

    from .models import Opportunity, OpportunityStage

    closed = ExpressionWrapper(Q(stage__in=[OpportunityStage.WON, OpportunityStage.LOST]), output_field=BooleanField())
    return (Opportunity.objects.for_tenant(lead.tenant_id).filter(lead=lead).select_related("owner", "lost_reason")
            .annotate(closed=closed).order_by("closed", "-created_at", "-id").first())
