"""Reads of routing: rep eligibility and open-lead counts, the Unassigned queue, assignment history."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from leadmgmt.tenancy.models import Membership, Role, Team, Tenant
from leads.models import OPEN_LEAD_STATUSES, Lead

from .models import Assignment

REP_ROLES = (Role.SDR, Role.AE)
# A lead counts against a rep's capacity while somebody still has to work it.
OPEN_STATUSES = OPEN_LEAD_STATUSES  # one definition, in leads.models
# A capture's routing task has had a minute to run; leads captured over a day ago are left to managers.
LOST_GRACE = timedelta(seconds=60)
LOST_WINDOW = timedelta(days=1)
LOST_BATCH = 500


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
    return list(Membership.objects.unscoped().filter(where, tenant=tenant, role__in=roles, is_active=True)
                .select_related("user").order_by("user_id"))


def open_lead_counts(*, tenant: Tenant, user_ids: Iterable) -> dict[int, int]:
    """Open leads (new, contacted, qualified) each of these users owns; users with none map to 0."""
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return {}
    rows = (Lead.objects.unscoped().filter(tenant=tenant, owner_id__in=ids, status__in=OPEN_STATUSES)
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
    return (Lead.objects.unscoped().filter(tenant=tenant, owner__isnull=True, status__in=OPEN_STATUSES)
            .select_related("team").order_by("created_at", "id"))


def leads_lost_before_routing(*, tenant: Tenant, now: datetime, limit: int = LOST_BATCH) -> list[UUID]:
    """Ids of the tenant's leads whose routing task was lost (broker down, worker killed): open, owned
    by nobody and never assigned at all, captured more than a minute and less than a day before `now`.
    Oldest first, at most `limit`."""
    ever_assigned = Assignment.objects.unscoped().filter(tenant=tenant, lead_id=OuterRef("pk"))
    return list(Lead.objects.unscoped()
                .filter(tenant=tenant, created_at__lt=now - LOST_GRACE, created_at__gte=now - LOST_WINDOW,
                        owner__isnull=True, status__in=OPEN_STATUSES)
                .exclude(Exists(ever_assigned))
                .order_by("created_at").values_list("id", flat=True)[:limit])


def assignment_history(*, tenant: Tenant, lead: Lead) -> QuerySet[Assignment]:
    """Every assignment of one lead, newest first (owner, previous owner, team, rule, who did it)."""
    return (Assignment.objects.unscoped().filter(tenant=tenant, lead_id=lead.pk)
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
    where = Q()
    for tenant_id, ids in by_tenant.items():
        where |= Q(tenant_id=tenant_id, lead_id__in=ids)
    rows = (Assignment.objects.unscoped().filter(where).select_related("owner", "previous_owner", "team", "actor_user")
            .order_by("lead_id", "-at", "-id").distinct("lead_id"))
    return {a.lead_id: a for a in rows}
