"""Reads of the manager pages: a manager's scope (their teams, or the whole tenant for admins), the
team queue, Unassigned, breached SLAs and escalations, aging leads, rep load, who can take a lead, and
the preview of a bulk move."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.http import Http404

from leadmgmt.tenancy.models import Membership, Role, Team, Tenant
from leadmgmt.tenancy.roles import MANAGER_PAGES, may
from leads.models import OPEN_STATUSES, Lead
from routing.models import Escalation, SlaClock
from routing.selectors import (
    REP_ROLES,
    ineligibility,
    lead_taker_roles,
    managed_team_ids,
    open_lead_counts,
)
from routing.strategies import account_scores_attach, route_decide, routing_run


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
    if tenant is None or membership is None or not may(membership.role, MANAGER_PAGES):
        raise PermissionDenied("The manager pages are for sales managers and tenant admins.")
    if membership.role == Role.ADMIN:
        return ManagerScope(tenant=tenant, membership=membership, team_ids=None, member_ids=frozenset())
    team_ids = managed_team_ids(tenant=tenant, membership=membership)  # routing's rule, also of reassign_targets
    member_ids = set(Membership.objects.for_tenant(tenant).filter(team_id__in=team_ids)
                     .values_list("user_id", flat=True)) if team_ids else set()
    return ManagerScope(tenant=tenant, membership=membership, team_ids=frozenset(team_ids),
                        member_ids=frozenset(member_ids))


def scope_reps(*, scope: ManagerScope) -> list[Membership]:
    """The reps (SDRs, AEs) of the scope with user and team, by name."""
    reps = Membership.objects.for_tenant(scope.tenant).filter(role__in=REP_ROLES)
    if not scope.whole_tenant:
        reps = reps.filter(team_id__in=scope.team_ids)
    return list(reps.select_related("user", "team").order_by("user__username", "id"))


def scope_teams(*, scope: ManagerScope) -> list[Team]:
    teams = Team.objects.for_tenant(scope.tenant)
    if not scope.whole_tenant:
        teams = teams.filter(id__in=scope.team_ids)
    return list(teams.order_by("name"))


def team_queue(*, scope: ManagerScope, owner_id: int | None = None, status: str | None = None) -> QuerySet[Lead]:
    """Open, owned leads of the scope, the most urgent SLA first, then the highest score."""
    leads = (Lead.objects.for_tenant(scope.tenant).filter(status__in=OPEN_STATUSES, owner__isnull=False)
             .filter(scope.lead_q()))
    if owner_id is not None:
        leads = leads.filter(owner_id=owner_id)
    if status:
        leads = leads.filter(status=status)
    return (leads.select_related("owner", "team")
            .order_by(F("sla_due_at").asc(nulls_last=True), F("score").desc(nulls_last=True), "created_at", "id"))


def unassigned_queue(*, scope: ManagerScope) -> QuerySet[Lead]:
    """Open leads nobody owns that the scope distributes, oldest first, with the reason."""
    return (Lead.objects.for_tenant(scope.tenant).filter(owner__isnull=True, status__in=OPEN_STATUSES)
            .filter(scope.unassigned_q()).select_related("team").order_by("created_at", "id"))


def breached_clocks(*, scope: ManagerScope) -> QuerySet[SlaClock]:
    """Running SLA clocks past their deadline on the scope's leads, the longest overdue first."""
    return (SlaClock.objects.for_tenant(scope.tenant).filter(breached_at__isnull=False, stopped_at__isnull=True)
            .filter(scope.lead_q("lead__")).select_related("lead", "owner").order_by("due_at", "id"))


def recent_escalations(*, scope: ManagerScope, limit: int = 50) -> list[Escalation]:
    """The latest escalation steps taken on the scope's leads, newest first."""
    return list(Escalation.objects.for_tenant(scope.tenant).filter(scope.lead_q("lead__"))
                .select_related("lead", "owner", "target").order_by("-at", "-id")[:limit])


def aging_leads(*, scope: ManagerScope) -> QuerySet[Lead]:
    """Open owned leads flagged as aging (untouched since assignment), the longest untouched first;
    `untouched_since` is annotated."""
    return (Lead.objects.for_tenant(scope.tenant).filter(status__in=OPEN_STATUSES, owner__isnull=False,
                                           aging_flagged_at__isnull=False)
            .filter(scope.lead_q()).annotate(untouched_since=Greatest("last_activity_at", "assigned_at"))
            .select_related("owner", "team").order_by(F("untouched_since").asc(nulls_first=True), "id"))


def bounced_leads(*, scope: ManagerScope) -> QuerySet[Lead]:
    """Leads of the scope (owned, or Unassigned ones it distributes) whose address hard-bounced and that nobody
    has fixed or dismissed yet, the latest bounce first, owner joined (one query per page)."""
    reach = scope.lead_q() | (Q(owner__isnull=True) & scope.unassigned_q()) if not scope.whole_tenant else Q()
    return (Lead.objects.for_tenant(scope.tenant).filter(email_bounced_at__isnull=False).filter(reach)
            .select_related("owner").order_by("-email_bounced_at", "id"))


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


def scope_reach_q(scope: ManagerScope) -> Q:
    """Leads the scope may act on: its teams' (`lead_q`) and the Unassigned it distributes; everything for
    admins. (An empty Q() OR-ed with another Q is that other Q alone, hence the explicit whole-tenant case.)"""
    if scope.whole_tenant:
        return Q()
    return scope.lead_q() | (Q(owner__isnull=True) & scope.unassigned_q())


def scope_lead_get(*, scope: ManagerScope, lead_id) -> Lead:
    """An open or closed lead the scope may act on (its teams' leads, or Unassigned); else 404."""
    try:
        lead_id = uuid.UUID(str(lead_id))
    except ValueError:
        raise Http404("No lead matches the given query.") from None
    lead = (Lead.objects.for_tenant(scope.tenant).filter(id=lead_id)
            .filter(scope_reach_q(scope))
            .select_related("owner", "team").first())
    if lead is None:
        raise Http404("No lead matches the given query.")
    return lead


# --- who can take a lead, and the preview of a bulk move ----------------------------------------------------


def reps_for_lead(*, reps: list[Membership], lead: Lead, exclude_owner: bool = True) -> list[Membership]:
    """Of `reps` (the reps who can take leads now), those whose role may own this lead, without its owner (kept
    with `exclude_owner=False`: a form that validates a stale choice lets the service say the lead moved)."""
    roles = lead_taker_roles(lead)
    return [m for m in reps if m.role in roles and not (exclude_owner and m.user_id == lead.owner_id)]


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


@dataclass
class BulkPreviewRow:
    """Where one lead would go: the named rep, or the rule that would take it and its likely pick."""

    lead: Lead
    to_name: str = ""  # the named rep or the rule's likely pick; "" when it would go to Unassigned
    rule_name: str = ""
    pool: list[str] = field(default_factory=list)  # reps the rule shares its leads among
    unassigned_why: str = ""
    decided_later: bool = False  # past the dry-run limit: the rules decide when the manager confirms


@dataclass
class BulkPreview:
    """What a bulk move would do now: the open leads of `from_rep`, each with where it would go."""

    from_rep: Membership
    to_rep: Membership | None
    rows: list[BulkPreviewRow]
    refusal: str = ""  # the named rep cannot take these leads: why (the service would refuse the same way)

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def lead_ids(self) -> list[str]:
        return sorted(str(row.lead.pk) for row in self.rows)

    def groups(self) -> list[tuple[str, int]]:
        """The destinations with their lead counts, biggest first ("Rule “Inbound”: Bob or Cat", 8)."""
        counts: dict[str, int] = {}
        for row in self.rows:
            if self.to_rep is not None:
                label = _name(self.to_rep.user)
            elif row.decided_later:
                label = "Decided by the rules when you confirm"
            elif row.unassigned_why:
                label = f"Unassigned: {row.unassigned_why}"
            elif len(row.pool) > 1:
                label = f"Rule “{row.rule_name}”, shared among {', '.join(row.pool)} (next: {row.to_name})"
            else:
                label = f"Rule “{row.rule_name}”: {row.to_name}"
            counts[label] = counts.get(label, 0) + 1
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


BULK_DRY_RUN_LIMIT = 25  # leads dry-run through the rules in a preview (two or three reads each)


def bulk_move_preview(*, scope: ManagerScope, from_rep: Membership, to_rep: Membership | None,
                      at: datetime) -> BulkPreview:
    """The open leads of a rep of the scope (the set `leads_reassign_bulk` moves), most urgent first, with
    where each would go: the named rep (or why they cannot take them all), or through the rules without
    `from_rep` (routing's dry run, nothing locked or written) for the first BULK_DRY_RUN_LIMIT leads."""
    leads = list(Lead.objects.for_tenant(scope.tenant).filter(owner_id=from_rep.user_id,
                                                status__in=OPEN_STATUSES)
                 .select_related("team").order_by(F("sla_due_at").asc(nulls_last=True), "created_at", "id"))
    if to_rep is not None:
        preview = BulkPreview(from_rep=from_rep, to_rep=to_rep,
                              rows=[BulkPreviewRow(lead=lead, to_name=_name(to_rep.user)) for lead in leads])
        counts = open_lead_counts(tenant=scope.tenant, user_ids=[to_rep.user_id])
        why = ineligibility(to_rep, at=at, open_count=None)
        held = counts.get(to_rep.user_id, 0)
        if why is None and leads and to_rep.capacity is not None and held + len(leads) > to_rep.capacity:
            why = f"at capacity ({held} of {to_rep.capacity} open leads, {len(leads)} more would not fit)"
        if why is not None and leads:
            preview.refusal = f"{to_rep.user.get_username()} cannot take leads: {why}."
        return preview
    decisions = []
    with routing_run():
        account_scores_attach(tenant=scope.tenant, leads=leads[:BULK_DRY_RUN_LIMIT])
        for lead in leads[:BULK_DRY_RUN_LIMIT]:
            lead.tenant = scope.tenant
            decisions.append(route_decide(tenant=scope.tenant, source=lead, at=at,
                                          exclude_user_ids=[from_rep.user_id], commit=False))
    ids = {user_id for decision in decisions for user_id in decision.candidates}
    names = {user.pk: _name(user) for user in get_user_model().objects.filter(pk__in=ids)} if ids else {}
    rows = [BulkPreviewRow(lead=lead, to_name=_name(decision.owner) if decision.owner is not None else "",
                           rule_name=decision.rule.name if decision.rule is not None else "",
                           pool=sorted(names.get(user_id, "?") for user_id in decision.candidates),
                           unassigned_why="" if decision.owner is not None else decision.reason)
            for lead, decision in zip(leads, decisions, strict=False)]
    rows += [BulkPreviewRow(lead=lead, decided_later=True) for lead in leads[BULK_DRY_RUN_LIMIT:]]
    return BulkPreview(from_rep=from_rep, to_rep=None, rows=rows)


# --- the Hot list ----------------------------------------------------------------------------------------


def hot_leads(*, scope: ManagerScope) -> QuerySet[Lead]:
    """Open hot leads (`is_hot`, at or above the scoring model's hot threshold) the scope owns or distributes:
    its teams' reps' leads and its Unassigned ones (admins: the tenant's); the hottest first, then the most
    urgent SLA, then the longest waiting. One query per page (the partial `lead_tenant_hot` index holds them)."""
    return (Lead.objects.for_tenant(scope.tenant).filter(is_hot=True, status__in=OPEN_STATUSES)
            .filter(scope_reach_q(scope))
            .select_related("owner", "team")
            .order_by(F("score").desc(nulls_last=True), F("sla_due_at").asc(nulls_last=True), "created_at", "id"))
