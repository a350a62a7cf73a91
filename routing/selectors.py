"""Reads of routing: rep eligibility and open-lead counts, the Unassigned queue, assignment history, reassign targets."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from leadmgmt.tenancy.models import Membership, Role, Team, Tenant
from leadmgmt.tenancy.roles import LEAD_REASSIGN, may
from leads.models import OPEN_STATUSES, Lead, LeadStatus

from .models import Assignment

REP_ROLES = (Role.SDR, Role.AE)
# A capture's routing task has had a minute to run; leads captured over a day ago are left to managers.
LOST_GRACE = timedelta(seconds=60)
LOST_WINDOW = timedelta(days=1)
LOST_BATCH = 500


# One probe of the (tenant, lead, at) index per lead. As `lead_id IN (…)` the planner may read every assignment of
# the tenant instead (its statistics taken when the tenant had a few hundred: 87,000 rows read, 48 ms, for an
# import's batch of 300 new leads); a LIMIT in a LATERAL subquery keeps it a probe per lead.
_ASSIGNED_SQL = (
    f"SELECT x.id FROM unnest(%s::uuid[]) AS x(id) CROSS JOIN LATERAL (SELECT 1 FROM {Assignment._meta.db_table} a "  # noqa: S608
    "WHERE a.tenant_id = %s AND a.lead_id = x.id LIMIT 1) AS hit"
)


def leads_ever_assigned(*, tenant: Tenant, lead_ids: Iterable) -> set:
    """The ids among `lead_ids` of the leads that have any assignment (routed once already)."""
    ids = [str(i) for i in lead_ids]
    if not ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(_ASSIGNED_SQL, [ids, tenant.pk])
        return {row[0] for row in cursor.fetchall()}


def candidate_memberships(*, tenant: Tenant, team: Team | int | None = None, user_ids: Iterable | None = None,
                          roles: Iterable[str] | None = None, whole_tenant: bool = False) -> list[Membership]:
    """Members of the target (a team, some people, or both: their union), in user-id order, before
    any availability filter (deactivated members are never candidates); no target means nobody, or
    everyone with `whole_tenant`. `roles` empty
    or None means the rep roles (SDR, AE)."""
    team_id = team.pk if isinstance(team, Team) else team
    ids = sorted({int(i) for i in user_ids}) if user_ids is not None else []
    if team_id is None and not ids and not whole_tenant:
        return []
    where = Q()
    if team_id is not None:
        where |= Q(team_id=team_id)
    if ids:
        where |= Q(user_id__in=ids)
    roles = list(roles or REP_ROLES)
    return list(Membership.objects.for_tenant(tenant).filter(where, role__in=roles, is_active=True)
                .select_related("user").order_by("user_id"))


def open_lead_counts(*, tenant: Tenant, user_ids: Iterable) -> dict[int, int]:
    """Open leads (new, contacted, qualified) each of these users owns; users with none map to 0."""
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return {}
    rows = (Lead.objects.for_tenant(tenant).filter(owner_id__in=ids, status__in=OPEN_STATUSES)
            .values("owner_id").annotate(n=Count("id")).values_list("owner_id", "n"))
    counts = dict.fromkeys(ids, 0)
    counts.update(dict(rows))
    return counts


def ineligibility(membership: Membership, *, at: datetime, open_count: int | None) -> str | None:
    """Why this member cannot take a lead at `at` ("deactivated", "unavailable", "out of office", "at
    capacity"), or None."""
    if not membership.is_active:
        return "deactivated"
    if not membership.is_available:
        return "unavailable"
    if membership.is_out_of_office(at):
        return "out of office"
    if membership.capacity is not None and (open_count or 0) >= membership.capacity:
        return "at capacity"
    return None


def eligible_reps(*, tenant: Tenant, team: Team | int | None = None, user_ids: Iterable | None = None,
                  roles: Iterable[str] | None = None, at: datetime) -> list[Membership]:
    """Members of the target (a team and/or people; neither: the whole tenant) who can take a lead at
    `at`: available, not out of office, and holding fewer open leads than their capacity. Two
    queries whatever the team size."""
    members = candidate_memberships(tenant=tenant, team=team, user_ids=user_ids, roles=roles,
                                    whole_tenant=team is None and user_ids is None)
    capped = [m.user_id for m in members if m.capacity is not None]
    counts = open_lead_counts(tenant=tenant, user_ids=capped)
    return [m for m in members if ineligibility(m, at=at, open_count=counts.get(m.user_id)) is None]


def unassigned_leads(*, tenant: Tenant) -> QuerySet[Lead]:
    """The manager's Unassigned queue: open leads nobody owns, oldest first, with the reason."""
    return (Lead.objects.for_tenant(tenant).filter(owner__isnull=True, status__in=OPEN_STATUSES)
            .select_related("team").order_by("created_at", "id"))


def leads_lost_before_routing(*, tenant: Tenant, now: datetime, limit: int = LOST_BATCH) -> list[UUID]:
    """Ids of the tenant's leads whose routing task was lost (broker down, worker killed): open, owned
    by nobody and never assigned at all, captured more than a minute and less than a day before `now`.
    Oldest first, at most `limit`."""
    ever_assigned = Assignment.objects.for_tenant(tenant).filter(lead_id=OuterRef("pk"))
    return list(Lead.objects.for_tenant(tenant)
                .filter(created_at__lt=now - LOST_GRACE, created_at__gte=now - LOST_WINDOW, owner__isnull=True, status__in=OPEN_STATUSES,
                        pipeline_pending_since__isnull=True)  # still the capture pipeline's (its own sweep)
                .exclude(Exists(ever_assigned))
                .order_by("created_at").values_list("id", flat=True)[:limit])


def assignment_history(*, tenant: Tenant, lead: Lead) -> QuerySet[Assignment]:
    """Every assignment of one lead, newest first (owner, previous owner, team, rule, who did it)."""
    return (Assignment.objects.for_tenant(tenant).filter(lead_id=lead.pk)
            .select_related("owner", "previous_owner", "team", "actor_user").order_by("-at", "-id"))


def latest_assignments(*, leads: Iterable[Lead]) -> dict:
    """{lead id: its latest Assignment} for a page of leads, in one query (DISTINCT ON), each lead's
    assignments read within its own tenant."""
    leads = [lead for lead in leads if lead is not None]
    if not leads:
        return {}
    by_tenant: dict[int, list] = {}
    for lead in leads:
        by_tenant.setdefault(lead.tenant_id, []).append(lead.pk)
    latest = {}
    for tenant_id, ids in by_tenant.items():
        latest.update((a.lead_id, a) for a in Assignment.objects.for_tenant(tenant_id).filter(lead_id__in=ids)
                      .select_related("owner", "previous_owner", "team", "actor_user")
                      .order_by("lead_id", "-at", "-id").distinct("lead_id"))
    return latest


# --- who a lead may be reassigned to (one rule for the API, the lead page and the manager pages) ------------


def managed_team_ids(*, tenant: Tenant, membership: Membership) -> frozenset[int]:
    """The teams a manager runs: those naming them as manager, and their own team."""
    ids = set(Team.objects.for_tenant(tenant).filter(manager_id=membership.user_id).values_list("id", flat=True))
    if membership.team_id is not None:
        ids.add(membership.team_id)
    return frozenset(ids)


def lead_taker_roles(lead: Lead) -> tuple[str, ...]:
    """The roles that can own the lead: an SQL (qualified, handed off) is an AE's; any other open lead a rep's."""
    return (Role.AE,) if lead.status == LeadStatus.QUALIFIED else tuple(REP_ROLES)


def reassign_targets(*, tenant: Tenant, membership: Membership | None, at: datetime, lead: Lead | None = None,
                     exclude_owner: bool = True) -> list[Membership]:
    """The reps the actor may hand a lead (or, without `lead`, a rep's leads) to at `at`: active reps who can take
    leads now (available, not out of office, under capacity), whose role may own the lead, without its owner
    (kept with `exclude_owner=False`, so a stale choice reaches the service and gets its "moved meanwhile").
    Managers: reps of the teams they manage or belong to; tenant admins and API keys (`membership` None): any
    rep of the tenant; anyone else: nobody. By user name; two or three queries."""
    if membership is not None and not may(membership.role, LEAD_REASSIGN):
        return []
    reps = Membership.objects.for_tenant(tenant).filter(role__in=REP_ROLES, is_active=True)
    if membership is not None and membership.role == Role.MANAGER:
        reps = reps.filter(team_id__in=managed_team_ids(tenant=tenant, membership=membership))
    if lead is not None:
        reps = reps.filter(role__in=lead_taker_roles(lead))
        if exclude_owner and lead.owner_id is not None:
            reps = reps.exclude(user_id=lead.owner_id)
    reps = list(reps.select_related("user", "team").order_by("user__username", "id"))
    counts = open_lead_counts(tenant=tenant, user_ids=[m.user_id for m in reps if m.capacity is not None])
    return [m for m in reps if ineligibility(m, at=at, open_count=counts.get(m.user_id)) is None]


def reassign_target_refusal(*, tenant: Tenant, membership: Membership | None, at: datetime, to_user_id: int,
                            lead: Lead | None = None) -> str | None:
    """Why `to_user_id` is not one of `reassign_targets` (a message for the field), or None when it is."""
    targets = reassign_targets(tenant=tenant, membership=membership, at=at, lead=lead, exclude_owner=False)
    if any(m.user_id == to_user_id for m in targets):
        return None
    what = "this lead" if lead is not None else "these leads"
    if membership is not None and membership.role == Role.MANAGER:
        return f"Choose an available rep of a team you manage who can take {what}."
    return f"Choose an available rep of this workspace who can take {what}."
