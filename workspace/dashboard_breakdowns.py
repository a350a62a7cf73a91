"""Dashboard breakdowns: response time, SLA compliance and outcomes per rep and per source, rejection
reasons per rep, and the people and sources the dashboard filters offer.

Each selector is one tenant-scoped statement over the same cohort as the page's figures (leads
created in the period, SLA clocks started in it). `owner_ids` is the viewer's reach over per-rep
rows: None for the whole tenant (admins, marketing ops), else the user ids of a manager's teams;
the restriction is in the SQL, so another team's rows are never fetched.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from django.utils import timezone

from leadmgmt.tenancy.models import Membership, Role

from .dashboard_credit import owner_pairs_sql
from .dashboards import (
    ALL,
    FUNNEL_COUNTS_SQL,
    NO_SOURCE,
    STAGE_ORDER,
    DateRange,
    Filters,
    cohort_sql,
    fetch_rows,
)

# A user's display name as Django's get_full_name() or the username (alias `u` is auth_user).
USER_NAME_SQL = "COALESCE(NULLIF(trim(concat_ws(' ', u.first_name, u.last_name)), ''), u.username)"


@dataclass
class BreakdownRow:
    """One rep's or one source's figures: response time, first-contact SLA, funnel and outcomes."""

    key: str  # the rep's user id (as text) or the source
    label: str
    leads: int  # leads of the period the rep owned at some point (a source: its leads)
    contacted: int  # first contacts made (a rep: by them)
    median_seconds: float | None
    p90_seconds: float | None
    sla_met: int
    sla_breached: int
    sla_running: int
    reached: list[int]  # captured, MQL, SAL, SQL, opportunity (cumulative, as in the funnel)
    converted: int
    rejected: int
    disqualified: int
    accepted: int = 0
    qualified: int = 0
    worked: int = 0  # leads with a call, email, meeting or note logged (a rep: by them)

    @property
    def sla_rate(self) -> float | None:
        decided = self.sla_met + self.sla_breached
        return self.sla_met / decided if decided else None

    @property
    def sql_rate(self) -> float | None:
        """Captured → SQL: the share of the row's leads that reached SQL or further."""
        return self.reached[3] / self.leads if self.leads else None


def _breakdown(*, tenant, period: DateRange, filters: Filters, by: str, owner_ids: Collection[int] | None,
               now: dt.datetime | None) -> list[BreakdownRow]:
    """Per rep (`by="rep"`, credited where it happened: see `dashboard_credit`) or per source. A rep's row
    counts the leads they owned during the period, the first contacts, acceptances, qualifications,
    conversions, rejections and disqualifications they made, the activities they logged and the
    first-contact SLA clocks that were theirs."""
    per_rep = by == "rep"
    keep = ""
    if per_rep:
        keep = " AND {k} IS NOT NULL" + (" AND {k} = ANY(%(owners)s)" if owner_ids is not None else "") + (
            " AND {k} = %(f_owner)s" if filters.owner_id is not None else "")

    def where(col: str) -> str:
        return keep.format(k=col)

    def credit(col: str) -> str:
        return col if per_rep else "source"

    outcomes = " UNION ALL ".join(
        f"SELECT {credit(col)} AS k, '{what}' AS what FROM cohort WHERE {col} IS NOT NULL{where(credit(col))}"
        for what, col in (("accepted", "accepted_by"), ("qualified", "qualified_by"), ("converted", "converted_by"),
                          ("rejected", "rejected_by"), ("disqualified", "disqualified_by")))
    clock_key = "c.owner_id" if per_rep else f"COALESCE(NULLIF(l.source, ''), '{NO_SOURCE}')"
    owners = owner_pairs_sql() if per_rep else "SELECT id, source AS k FROM cohort"
    label, join, order = (
        (USER_NAME_SQL, "JOIN auth_user u ON u.id = keys.k::bigint", f"{USER_NAME_SQL}, 1") if per_rep
        else ("keys.k", "", "COALESCE(o.leads, 0) DESC, 1"))
    rows = fetch_rows(f"""
        WITH cohort AS ({cohort_sql(filters, credit=True)}),
        owned AS (SELECT p.k, c.* FROM ({owners}) p JOIN cohort c ON c.id = p.id WHERE true{where("p.k")}),
        by_owner AS (SELECT k, {FUNNEL_COUNTS_SQL}, count(*) AS leads FROM owned GROUP BY 1),
        by_contact AS (
          SELECT {credit("contact_by")} AS k, count(*) AS contacted,
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) AS median,
                 percentile_cont(0.9) WITHIN GROUP (ORDER BY wait) AS p90
          FROM cohort WHERE wait IS NOT NULL{where(credit("contact_by"))} GROUP BY 1
        ),
        by_outcome AS (
          SELECT k, count(*) FILTER (WHERE what = 'accepted') AS accepted,
                 count(*) FILTER (WHERE what = 'qualified') AS qualified,
                 count(*) FILTER (WHERE what = 'converted') AS converted,
                 count(*) FILTER (WHERE what = 'rejected') AS rejected,
                 count(*) FILTER (WHERE what = 'disqualified') AS disqualified
          FROM ({outcomes}) x GROUP BY 1
        ),
        by_activity AS (
          SELECT {"a.actor_id" if per_rep else "c.source"} AS k, count(DISTINCT a.lead_id) AS worked
          FROM leads_activity a JOIN cohort c ON c.id = a.lead_id
          WHERE a.tenant_id = %(tenant)s AND a.occurred_at < %(until)s{where("a.actor_id")}
          GROUP BY 1
        ),
        by_clock AS (
          SELECT k, count(*) FILTER (WHERE NOT breached AND stopped_at IS NOT NULL AND stop_reason <> 'reassigned') AS met,
                 count(*) FILTER (WHERE breached) AS breached,
                 count(*) FILTER (WHERE NOT breached AND stopped_at IS NULL) AS running
          FROM (SELECT {clock_key} AS k, c.stopped_at, c.stop_reason,
                       (c.breached_at IS NOT NULL OR COALESCE(c.stopped_at, %(now)s) > c.due_at) AS breached
                FROM routing_slaclock c
                JOIN leads_lead l ON l.id = c.lead_id AND l.tenant_id = c.tenant_id
                WHERE c.tenant_id = %(tenant)s AND c.kind = 'first_contact'
                  AND c.started_at >= %(since)s AND c.started_at < %(until)s
                  {filters.sql(owner="c.owner_id")}{where("c.owner_id")}) s
          GROUP BY k
        ),
        keys AS (SELECT k FROM by_owner UNION SELECT k FROM by_contact UNION SELECT k FROM by_outcome
                 UNION SELECT k FROM by_clock)
        SELECT keys.k::text, {label}, COALESCE(o.leads, 0), COALESCE(ct.contacted, 0), ct.median, ct.p90,
               COALESCE(b.met, 0), COALESCE(b.breached, 0), COALESCE(b.running, 0),
               ARRAY[COALESCE(o.reached_1, 0), COALESCE(o.reached_2, 0), COALESCE(o.reached_3, 0),
                     COALESCE(o.reached_4, 0), COALESCE(o.reached_5, 0)],
               COALESCE(x.converted, 0), COALESCE(x.rejected, 0), COALESCE(x.disqualified, 0),
               COALESCE(x.accepted, 0), COALESCE(x.qualified, 0), COALESCE(w.worked, 0)
        FROM keys
        LEFT JOIN by_owner o ON o.k = keys.k
        LEFT JOIN by_contact ct ON ct.k = keys.k
        LEFT JOIN by_outcome x ON x.k = keys.k
        LEFT JOIN by_clock b ON b.k = keys.k
        LEFT JOIN by_activity w ON w.k = keys.k
        {join}
        ORDER BY {order}
    """, period.params(tenant) | filters.params() | {
        "order": STAGE_ORDER, "owners": list(owner_ids or []), "now": now or timezone.now()})
    return [BreakdownRow(key=k, label=name, leads=leads, contacted=contacted,
                         median_seconds=None if median is None else float(median),
                         p90_seconds=None if p90 is None else float(p90), sla_met=met, sla_breached=breached,
                         sla_running=running, reached=list(reached), converted=converted, rejected=rejected,
                         disqualified=disqualified, accepted=accepted, qualified=qualified, worked=worked)
            for k, name, leads, contacted, median, p90, met, breached, running, reached, converted, rejected,
            disqualified, accepted, qualified, worked in rows]


def rep_breakdown(*, tenant, period: DateRange, filters: Filters = ALL, owner_ids: Collection[int] | None = None,
                  now: dt.datetime | None = None) -> list[BreakdownRow]:
    """Per owner of the leads created in the period (unassigned leads are left out), by name: their
    response time, first-contact SLA clocks (by the clock's owner), how far their leads got and
    how many they converted, rejected or disqualified."""
    return _breakdown(tenant=tenant, period=period, filters=filters, by="rep", owner_ids=owner_ids, now=now)


def source_breakdown(*, tenant, period: DateRange, filters: Filters = ALL,
                     now: dt.datetime | None = None) -> list[BreakdownRow]:
    """Per source of the leads created in the period, biggest first: response time, first-contact
    SLA clocks of those leads, the funnel and the outcomes."""
    return _breakdown(tenant=tenant, period=period, filters=filters, by="source", owner_ids=None, now=now)


@dataclass
class RepRejection:
    owner_id: int
    rep: str
    code: str
    label: str
    rejected: int
    disqualified: int

    @property
    def total(self) -> int:
        return self.rejected + self.disqualified


def rejections_by_rep(*, tenant, period: DateRange, filters: Filters = ALL,
                      owner_ids: Collection[int] | None = None) -> list[RepRejection]:
    """Rejection and disqualification reasons of the leads created in the period, per rep who rejected or
    disqualified the lead (the actor in the audit trail, not whoever owns the lead now; see
    `dashboard_credit`) by name, and reason (most frequent first), with the taxonomy's labels."""
    scope = " AND x.k = ANY(%(owners)s)" if owner_ids is not None else ""
    mine = " AND x.k = %(f_owner)s" if filters.owner_id is not None else ""
    rows = fetch_rows(f"""
        WITH cohort AS ({cohort_sql(filters.by_source, credit=True)})
        SELECT x.k, {USER_NAME_SQL}, x.rejection_reason, COALESCE(r.label, x.rejection_reason),
               count(*) FILTER (WHERE x.status <> 'unqualified'), count(*) FILTER (WHERE x.status = 'unqualified')
        FROM (SELECT COALESCE(rejected_by, disqualified_by) AS k, status, rejection_reason FROM cohort
              WHERE rejection_reason <> '') x
        JOIN auth_user u ON u.id = x.k
        LEFT JOIN routing_rejectionreason r ON r.tenant_id = %(tenant)s AND r.code = x.rejection_reason
        WHERE x.k IS NOT NULL{scope}{mine}
        GROUP BY 1, 2, 3, 4
        ORDER BY 2, 1, count(*) DESC, 4
    """, period.params(tenant) | filters.params() | {"owners": list(owner_ids or []), "order": STAGE_ORDER})
    return [RepRejection(owner_id=o, rep=name, code=code, label=label, rejected=r, disqualified=d)
            for o, name, code, label, r, d in rows]


@dataclass
class Breakdowns:
    reps: list[BreakdownRow]
    sources: list[BreakdownRow]
    rejections_by_rep: list[RepRejection]


def breakdowns_for(*, tenant, period: DateRange, filters: Filters = ALL, owner_ids: Collection[int] | None = None,
                   now: dt.datetime | None = None) -> Breakdowns:
    """The page's breakdowns: three queries whatever the tenant's size."""
    return Breakdowns(
        reps=rep_breakdown(tenant=tenant, period=period, filters=filters, owner_ids=owner_ids, now=now),
        sources=source_breakdown(tenant=tenant, period=period, filters=filters, now=now),
        rejections_by_rep=rejections_by_rep(tenant=tenant, period=period, filters=filters, owner_ids=owner_ids),
    )


# --- what the filters offer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """Whose per-rep figures a viewer may see: `owner_ids` None is the whole tenant."""

    owner_ids: frozenset[int] | None
    people: list[tuple[int, str]]  # the owners the rep filter offers: (user id, name), by name


def dashboard_reach(*, tenant, membership: Membership) -> Reach:
    """Admins and marketing ops reach the whole tenant; a manager the members of the teams they manage
    or belong to, and themselves (the manager pages' scope). One query."""
    whole = membership.role != Role.MANAGER
    rows = fetch_rows(f"""
        SELECT m.user_id, {USER_NAME_SQL}
        FROM tenancy_membership m JOIN auth_user u ON u.id = m.user_id
        WHERE m.tenant_id = %(tenant)s AND m.role <> %(ops)s
          AND (%(whole)s OR m.user_id = %(me)s OR m.team_id = %(my_team)s
               OR m.team_id IN (SELECT t.id FROM tenancy_team t WHERE t.tenant_id = %(tenant)s AND t.manager_id = %(me)s))
        ORDER BY 2, 1
    """, {"tenant": tenant.pk, "ops": Role.MARKETING_OPS.value, "whole": whole, "me": membership.user_id,
          "my_team": membership.team_id})
    people = [(user_id, name) for user_id, name in rows]
    return Reach(owner_ids=None if whole else frozenset(user_id for user_id, _name in people), people=people)


def lead_sources(*, tenant) -> list[str]:
    """Every source the tenant's leads carry ("" for none), alphabetically."""
    return [source for (source,) in fetch_rows(
        "SELECT DISTINCT source FROM leads_lead WHERE tenant_id = %(tenant)s ORDER BY 1", {"tenant": tenant.pk})]
