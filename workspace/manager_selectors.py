"""Reads of the manager pages: a manager's scope (their teams, or the whole tenant for admins), the
team queue, Unassigned, breached SLAs and escalations, aging leads, and rep load."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.http import Http404

from leadmgmt.tenancy.models import Membership, Role, Team, Tenant
from leads.models import Lead
from routing.models import Escalation, SlaClock
from routing.selectors import OPEN_STATUSES, REP_ROLES, ineligibility, open_lead_counts

MANAGER_ROLES = {Role.MANAGER, Role.ADMIN}


@dataclass(frozen=True)
class ManagerScope:
    """What a manager page may show and act on: `team_ids` None means the whole tenant (admins)."""

    tenant: Tenant
    membership: Membership
    team_ids: frozenset[int] | None
    member_ids: frozenset[int]  # users of those teams (any role); empty for the whole tenant

    @property
    def whole_tenant(self) -> bool:
        return self.team_ids is None

    def lead_q(self, prefix: str = "") -> Q:
        """Leads of the scope: of its teams or owned by their members; all of the tenant for admins."""
        if self.whole_tenant:
            return Q()
        return (Q(**{f"{prefix}team_id__in": self.team_ids}) | Q(**{f"{prefix}owner_id__in": self.member_ids})
                | Q(**{f"{prefix}owner_id": self.membership.user_id}))

    def unassigned_q(self) -> Q:
        """Unassigned leads a manager distributes: their teams' and those no team holds yet."""
        if self.whole_tenant:
            return Q()
        return Q(team_id__in=self.team_ids) | Q(team__isnull=True)


def manager_scope(*, tenant: Tenant | None, membership: Membership | None) -> ManagerScope:
    """The scope of a manager (the teams they manage or belong to) or an admin; others are refused."""
    if tenant is None or membership is None or membership.role not in MANAGER_ROLES:
        raise PermissionDenied("The manager pages are for sales managers and tenant admins.")
    if membership.role == Role.ADMIN:
        return ManagerScope(tenant=tenant, membership=membership, team_ids=None, member_ids=frozenset())
    team_ids = set(Team.objects.unscoped().filter(tenant=tenant, manager_id=membership.user_id)
                   .values_list("id", flat=True))
    if membership.team_id is not None:
        team_ids.add(membership.team_id)
    member_ids = set(Membership.objects.unscoped().filter(tenant=tenant, team_id__in=team_ids)
                     .values_list("user_id", flat=True)) if team_ids else set()
    return ManagerScope(tenant=tenant, membership=membership, team_ids=frozenset(team_ids),
                        member_ids=frozenset(member_ids))


def scope_reps(*, scope: ManagerScope) -> list[Membership]:
    """The reps (SDRs, AEs) of the scope with user and team, by name."""
    reps = Membership.objects.unscoped().filter(tenant=scope.tenant, role__in=REP_ROLES)
    if not scope.whole_tenant:
        reps = reps.filter(team_id__in=scope.team_ids)
    return list(reps.select_related("user", "team").order_by("user__username", "id"))


def scope_teams(*, scope: ManagerScope) -> list[Team]:
    teams = Team.objects.unscoped().filter(tenant=scope.tenant)
    if not scope.whole_tenant:
        teams = teams.filter(id__in=scope.team_ids)
    return list(teams.order_by("name"))


def team_queue(*, scope: ManagerScope, owner_id: int | None = None, status: str | None = None) -> QuerySet[Lead]:
    """Open, owned leads of the scope, the most urgent SLA first, then the highest score."""
    leads = (Lead.objects.unscoped().filter(tenant=scope.tenant, status__in=OPEN_STATUSES, owner__isnull=False)
             .filter(scope.lead_q()))
    if owner_id is not None:
        leads = leads.filter(owner_id=owner_id)
    if status:
        leads = leads.filter(status=status)
    return (leads.select_related("owner", "team")
            .order_by(F("sla_due_at").asc(nulls_last=True), F("score").desc(nulls_last=True), "created_at", "id"))


def unassigned_queue(*, scope: ManagerScope) -> QuerySet[Lead]:
    """Open leads nobody owns that the scope distributes, oldest first, with the reason."""
    return (Lead.objects.unscoped().filter(tenant=scope.tenant, owner__isnull=True, status__in=OPEN_STATUSES)
            .filter(scope.unassigned_q()).select_related("team").order_by("created_at", "id"))


def breached_clocks(*, scope: ManagerScope) -> QuerySet[SlaClock]:
    """Running SLA clocks past their deadline on the scope's leads, the longest overdue first."""
    return (SlaClock.objects.unscoped().filter(tenant=scope.tenant, breached_at__isnull=False, stopped_at__isnull=True)
            .filter(scope.lead_q("lead__")).select_related("lead", "owner").order_by("due_at", "id"))


def recent_escalations(*, scope: ManagerScope, limit: int = 50) -> list[Escalation]:
    """The latest escalation steps taken on the scope's leads, newest first."""
    return list(Escalation.objects.unscoped().filter(tenant=scope.tenant).filter(scope.lead_q("lead__"))
                .select_related("lead", "owner", "target").order_by("-at", "-id")[:limit])


def aging_leads(*, scope: ManagerScope) -> QuerySet[Lead]:
    """Open owned leads flagged as aging (untouched since assignment), the longest untouched first;
    `untouched_since` is annotated."""
    return (Lead.objects.unscoped().filter(tenant=scope.tenant, status__in=OPEN_STATUSES, owner__isnull=False,
                                           aging_flagged_at__isnull=False)
            .filter(scope.lead_q()).annotate(untouched_since=Greatest("last_activity_at", "assigned_at"))
            .select_related("owner", "team").order_by(F("untouched_since").asc(nulls_first=True), "id"))


@dataclass(frozen=True)
class RepLoad:
    membership: Membership
    open_leads: int
    ineligible_because: str | None

    @property
    def out_of_office_now(self) -> bool:
        return self.ineligible_because == "out of office"

    @property
    def availability_label(self) -> str:
        """What the reps page shows: the manager's toggle reads as out of office, dates say until when."""
        return {None: "Available", "unavailable": "Out of office", "out of office": "Out of office (dates)",
                "at capacity": "At capacity"}.get(self.ineligible_because, str(self.ineligible_because).capitalize())


def rep_load(*, scope: ManagerScope, at: datetime) -> list[RepLoad]:
    """Each rep of the scope with their open leads and why routing would skip them now (or None)."""
    reps = scope_reps(scope=scope)
    counts = open_lead_counts(tenant=scope.tenant, user_ids=[m.user_id for m in reps])
    return [RepLoad(membership=m, open_leads=counts.get(m.user_id, 0),
                    ineligible_because=ineligibility(m, at=at, open_count=counts.get(m.user_id, 0)))
            for m in reps]


def assignable_reps(*, scope: ManagerScope, at: datetime, reps: list[Membership] | None = None) -> list[Membership]:
    """The reps of the scope a manager may hand a lead to now: available, not out of office and under
    capacity (the choices of the inline reassign controls). One query given the scope's `reps`, two without."""
    reps = scope_reps(scope=scope) if reps is None else reps
    counts = open_lead_counts(tenant=scope.tenant, user_ids=[m.user_id for m in reps])
    return [m for m in reps if ineligibility(m, at=at, open_count=counts.get(m.user_id, 0)) is None]


def scope_membership_get(*, scope: ManagerScope, membership_id) -> Membership:
    """A rep of the scope by membership id; another team's or tenant's is the same 404 as a missing one."""
    try:
        membership_id = int(membership_id)
    except (TypeError, ValueError):
        raise Http404("No rep matches the given query.") from None
    for membership in scope_reps(scope=scope):
        if membership.pk == membership_id:
            return membership
    raise Http404("No rep matches the given query.")


def scope_lead_get(*, scope: ManagerScope, lead_id) -> Lead:
    """An open or closed lead the scope may act on (its teams' leads, or Unassigned); else 404."""
    try:
        lead_id = uuid.UUID(str(lead_id))
    except ValueError:
        raise Http404("No lead matches the given query.") from None
    lead = (Lead.objects.unscoped().filter(tenant=scope.tenant, id=lead_id)
            .filter(scope.lead_q() | (Q(owner__isnull=True) & scope.unassigned_q()))
            .select_related("owner", "team").first())
    if lead is None:
        raise Http404("No lead matches the given query.")
    return lead
