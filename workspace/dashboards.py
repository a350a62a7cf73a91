"""Dashboard reads (seed 003 "Maintain"): set-based SQL over one tenant and a date range.

Every selector runs one query, takes the tenant explicitly and filters on `tenant_id` (raw SQL
bypasses the tenant-scoped manager, so the filter is written out in each statement). Periods are
whole days in the tenant's time zone: `DateRange(start, end)` covers `start` 00:00 to the end of
`end`. `Filters` narrow every figure to one rep and/or one source, crediting the rep where it happened
(`dashboard_credit`): leads they owned during the period (Assignment history, not the owner now), contacts
and rejections they made, SLA clocks that were theirs; aging, a snapshot, by the owner now. Lead figures are about the leads *created* in the period (a cohort); SLA figures about the
clocks *started* in it; velocity about the stage moves *made* in it; aging is a snapshot as of now.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from leads.models import OPEN_STATUSES, LeadStage

from .dashboard_credit import CREDIT_COLUMNS_SQL, CREDIT_JOINS_SQL, owned_by_sql

STAGE_ORDER = [s.value for s in LeadStage]  # raw, mql, sal, sql, opportunity, customer
FUNNEL_STEPS = [("raw", "Captured"), ("mql", "MQL"), ("sal", "SAL"), ("sql", "SQL"),
                ("opportunity", "Opportunity")]
AGING_BUCKETS = ["0–2 days", "2–3 days", "3–7 days", "7+ days"]
NO_SOURCE = "(no source)"
TOP_SOURCES = 6
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class DateRange:
    """Whole days [start, end] in `tz`, bucketed by `unit` ("day" or "week")."""

    start: dt.date
    end: dt.date
    tz: str = "UTC"
    unit: str = "day"

    @classmethod
    def default(cls, *, tz: str = "UTC", today: dt.date | None = None, days: int = DEFAULT_DAYS) -> DateRange:
        today = today or timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()
        return cls(start=today - dt.timedelta(days=days - 1), end=today, tz=tz)

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=zoneinfo.ZoneInfo(self.tz))

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=zoneinfo.ZoneInfo(self.tz))

    def buckets(self) -> list[dt.date]:
        """The first day of every bucket in the range (weeks start on Monday, as date_trunc does)."""
        step = dt.timedelta(days=7 if self.unit == "week" else 1)
        day = self.start - dt.timedelta(days=self.start.weekday()) if self.unit == "week" else self.start
        out = []
        while day <= self.end:
            out.append(day)
            day += step
        return out

    def params(self, tenant) -> dict:
        return {"tenant": tenant.pk, "since": self.since, "until": self.until, "tz": self.tz,
                "unit": "week" if self.unit == "week" else "day"}


@dataclass(frozen=True)
class Filters:
    """Narrow the figures to one owner (a user id) and/or one source ("" is the leads without one)."""

    owner_id: int | None = None
    source: str | None = None

    def sql(self, *, owner: str | None = None, source: str = "l.source") -> str:
        """`AND` clauses: the rep on the `owner` column if given, else the lead `l` owned by the rep before
        %(until)s (its assignment history); the source on `source`. Column names come from this module,
        values are parameters."""
        rep = f" AND {owner} = %(f_owner)s" if owner is not None else f" AND {owned_by_sql()}"
        return ((rep if self.owner_id is not None else "")
                + (f" AND {source} = %(f_source)s" if self.source is not None else ""))

    @property
    def by_source(self) -> Filters:
        """The same source, every rep."""
        return Filters(source=self.source)

    def params(self) -> dict:
        return {"f_owner": self.owner_id, "f_source": self.source}


ALL = Filters()


def cohort_sql(filters: Filters, *, credit: bool = False) -> str:
    """The leads created in the period (alias `l` inside) with what the breakdowns need: source,
    owner, status, reason, seconds to first contact (`wait`) and the furthest stage reached (1..5);
    with `credit`, who did what on each (`dashboard_credit.CREDIT_COLUMNS_SQL`)."""
    return f"""
        SELECT l.id, l.owner_id, l.status, l.rejection_reason,
               COALESCE(NULLIF(l.source, ''), '{NO_SOURCE}') AS source,
               extract(epoch FROM l.first_contacted_at - l.created_at) AS wait,
               GREATEST(array_position(%(order)s::text[], l.stage::text), COALESCE(m.reached, 1),
                        CASE WHEN l.status = 'converted' THEN 5 ELSE 1 END) AS reached{
                            "," + CREDIT_COLUMNS_SQL if credit else ""}
        FROM leads_lead l
        LEFT JOIN LATERAL (SELECT max(array_position(%(order)s::text[], t.to_stage::text)) AS reached
                           FROM leads_stagetransition t
                           WHERE t.tenant_id = l.tenant_id AND t.lead_id = l.id) m ON true{
                               CREDIT_JOINS_SQL if credit else ""}
        WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(since)s AND l.created_at < %(until)s{filters.sql()}
    """


def fetch_rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- lead volume by source ------------------------------------------------------------------------------


@dataclass
class VolumeBySource:
    buckets: list[dt.date]
    sources: list[str]  # the top sources by volume, then "Other" when there are more
    counts: dict[str, list[int]]  # source -> count per bucket
    total: int

    def totals(self) -> dict[str, int]:
        return {source: sum(values) for source, values in self.counts.items()}


def lead_volume_by_source(*, tenant, period: DateRange, filters: Filters = ALL) -> VolumeBySource:
    """Leads created per day (or week) and source; sources beyond the top six are grouped as "Other"."""
    rows = fetch_rows(f"""
        SELECT date_trunc(%(unit)s, l.created_at AT TIME ZONE %(tz)s)::date AS bucket,
               COALESCE(NULLIF(l.source, ''), '{NO_SOURCE}') AS source, count(*)
        FROM leads_lead l
        WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(since)s AND l.created_at < %(until)s{filters.sql()}
        GROUP BY 1, 2
    """, period.params(tenant) | filters.params())
    buckets = period.buckets()
    index = {day: i for i, day in enumerate(buckets)}
    per_source: dict[str, int] = {}
    for _bucket, source, n in rows:
        per_source[source] = per_source.get(source, 0) + n
    ranked = sorted(per_source, key=lambda s: (-per_source[s], s))
    top = ranked[:TOP_SOURCES] if len(ranked) <= TOP_SOURCES else ranked[:TOP_SOURCES - 1]
    sources = top + (["Other"] if len(ranked) > len(top) else [])
    counts = {source: [0] * len(buckets) for source in sources}
    for bucket, source, n in rows:
        counts[source if source in top else "Other"][index[bucket]] += n
    return VolumeBySource(buckets=buckets, sources=sources, counts=counts, total=sum(per_source.values()))


# --- response time and SLA compliance ---------------------------------------------------------------------


@dataclass
class ResponseTime:
    leads: int
    contacted: int
    median_seconds: float | None
    p90_seconds: float | None


def response_time(*, tenant, period: DateRange, filters: Filters = ALL) -> ResponseTime:
    """Creation → first contact (a call, email or meeting) of the leads created in the period:
    median and 90th percentile in seconds over the contacted ones. For one rep: the leads they owned,
    and the first contacts they made."""
    if filters.owner_id is None:
        sql = f"""
            SELECT count(*), count(l.first_contacted_at),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM l.first_contacted_at - l.created_at)),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM l.first_contacted_at - l.created_at))
            FROM leads_lead l
            WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(since)s AND l.created_at < %(until)s{filters.sql()}"""
    else:
        sql = f"""
            WITH cohort AS ({cohort_sql(filters, credit=True)})
            SELECT count(*), count(wait) FILTER (WHERE contact_by = %(f_owner)s),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) FILTER (WHERE contact_by = %(f_owner)s),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY wait) FILTER (WHERE contact_by = %(f_owner)s)
            FROM cohort"""
    ((leads, contacted, median, p90),) = fetch_rows(sql, period.params(tenant) | filters.params()
                                                    | {"order": STAGE_ORDER})
    return ResponseTime(leads=leads, contacted=contacted,
                        median_seconds=float(median) if median is not None else None,
                        p90_seconds=float(p90) if p90 is not None else None)


@dataclass
class SlaCompliance:
    kind: str
    met: int
    breached: int
    running: int

    @property
    def rate(self) -> float | None:
        """Met over decided (met + breached); clocks still running or handed over before their
        deadline (reassigned) are not decided either way."""
        decided = self.met + self.breached
        return self.met / decided if decided else None


def sla_compliance(*, tenant, period: DateRange, now: dt.datetime | None = None,
                   filters: Filters = ALL) -> dict[str, SlaCompliance]:
    """SLA clocks started in the period, by kind: met (stopped by the rep's action before the
    deadline), breached (past the deadline, stopped or not) and still running. The owner filter is
    the clock's owner: whose clock it was, even if the lead moved on."""
    params = period.params(tenant) | filters.params() | {"now": now or timezone.now()}
    rows = fetch_rows(f"""
        SELECT kind,
               count(*) FILTER (WHERE NOT breached AND stopped_at IS NOT NULL AND stop_reason <> 'reassigned'),
               count(*) FILTER (WHERE breached),
               count(*) FILTER (WHERE NOT breached AND stopped_at IS NULL)
        FROM (SELECT c.kind, c.stopped_at, c.stop_reason,
                     (c.breached_at IS NOT NULL OR COALESCE(c.stopped_at, %(now)s) > c.due_at) AS breached
              FROM routing_slaclock c
              JOIN leads_lead l ON l.id = c.lead_id AND l.tenant_id = c.tenant_id
              WHERE c.tenant_id = %(tenant)s AND c.started_at >= %(since)s AND c.started_at < %(until)s
                    {filters.sql(owner="c.owner_id")}) s
        GROUP BY kind ORDER BY kind
    """, params)
    return {kind: SlaCompliance(kind=kind, met=met, breached=breached, running=running)
            for kind, met, breached, running in rows}


# --- funnel and velocity ----------------------------------------------------------------------------------


@dataclass
class FunnelStep:
    stage: str
    label: str
    count: int
    from_previous: float | None  # share of the previous step that reached this one
    from_start: float | None  # share of all captured leads


FUNNEL_COUNTS_SQL = """count(*) AS reached_1, count(*) FILTER (WHERE reached >= 2) AS reached_2,
        count(*) FILTER (WHERE reached >= 3) AS reached_3, count(*) FILTER (WHERE reached >= 4) AS reached_4,
        count(*) FILTER (WHERE reached >= 5) AS reached_5"""


def stage_funnel(*, tenant, period: DateRange, filters: Filters = ALL) -> list[FunnelStep]:
    """How far the leads created in the period got: a lead counts at every stage up to the furthest
    one it reached (its current stage, any stage it moved to, or converted → opportunity)."""
    ((*counts,),) = fetch_rows(f"WITH cohort AS ({cohort_sql(filters)}) SELECT {FUNNEL_COUNTS_SQL} FROM cohort",
                          period.params(tenant) | filters.params() | {"order": STAGE_ORDER})
    return funnel_steps(counts)


def funnel_steps(counts: list[int]) -> list[FunnelStep]:
    """The five funnel counts (captured … opportunity) with their conversion rates."""
    steps, previous = [], None
    for (stage, label), n in zip(FUNNEL_STEPS, counts, strict=True):
        steps.append(FunnelStep(
            stage=stage, label=label, count=n,
            from_previous=(n / previous if previous else None) if previous is not None else None,
            from_start=(n / counts[0]) if counts[0] else None,
        ))
        previous = n
    return steps


@dataclass
class StageVelocity:
    from_stage: str
    to_stage: str
    moves: int
    median_seconds: float

    @property
    def label(self) -> str:
        names = dict(LeadStage.choices)
        return f"{names.get(self.from_stage, 'Created')} → {names.get(self.to_stage, self.to_stage)}"


def stage_velocity(*, tenant, period: DateRange, filters: Filters = ALL) -> list[StageVelocity]:
    """Median time a lead spent before each kind of stage move made in the period: since its
    previous move, or since it was created for its first one."""
    rows = fetch_rows(f"""
        WITH moves AS (
          SELECT t.from_stage, t.to_stage, t.at,
                 COALESCE(lag(t.at) OVER (PARTITION BY t.lead_id ORDER BY t.at, t.id), l.created_at) AS since
          FROM leads_stagetransition t
          JOIN leads_lead l ON l.id = t.lead_id AND l.tenant_id = t.tenant_id
          WHERE t.tenant_id = %(tenant)s AND t.at < %(until)s{filters.sql()}
            AND t.lead_id IN (SELECT lead_id FROM leads_stagetransition
                              WHERE tenant_id = %(tenant)s AND at >= %(since)s AND at < %(until)s)
        )
        SELECT from_stage, to_stage, count(*),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at - since))
        FROM moves WHERE at >= %(since)s
        GROUP BY 1, 2
        ORDER BY COALESCE(array_position(%(order)s::text[], from_stage::text), 0),
                 array_position(%(order)s::text[], to_stage::text)
    """, period.params(tenant) | filters.params() | {"order": STAGE_ORDER})
    return [StageVelocity(from_stage=f, to_stage=t, moves=n, median_seconds=max(float(m), 0.0))
            for f, t, n, m in rows]


# --- aging and rejections ---------------------------------------------------------------------------------


@dataclass
class AgingBucket:
    label: str
    leads: int
    unassigned: int


def lead_aging(*, tenant, now: dt.datetime | None = None, filters: Filters = ALL) -> list[AgingBucket]:
    """Open leads (new, contacted, qualified) by how long nobody touched them: since the later of
    their last activity and their assignment (the SLA Agent's aging spell), else since creation."""
    rows = fetch_rows(f"""
        SELECT b, count(*), count(*) FILTER (WHERE owner_id IS NULL)
        FROM (SELECT l.owner_id,
                     CASE WHEN age < interval '2 days' THEN 0 WHEN age < interval '3 days' THEN 1
                          WHEN age < interval '7 days' THEN 2 ELSE 3 END AS b
              FROM (SELECT owner_id, %(now)s - COALESCE(GREATEST(last_activity_at, assigned_at), created_at) AS age
                    FROM leads_lead WHERE tenant_id = %(tenant)s AND status = ANY(%(open)s)
                          {filters.sql(owner="owner_id", source="source")}) l) x
        GROUP BY b
    """, {"tenant": tenant.pk, "now": now or timezone.now(), "open": [s.value for s in OPEN_STATUSES]} | filters.params())
    found = {b: (n, u) for b, n, u in rows}
    return [AgingBucket(label=label, leads=found.get(i, (0, 0))[0], unassigned=found.get(i, (0, 0))[1])
            for i, label in enumerate(AGING_BUCKETS)]


@dataclass
class RejectionCount:
    code: str
    label: str
    rejected: int  # rejected back to marketing by sales (or recycled to nurture for "not now")
    disqualified: int  # worked by the rep and disqualified

    @property
    def total(self) -> int:
        return self.rejected + self.disqualified


def rejection_reasons(*, tenant, period: DateRange, filters: Filters = ALL) -> list[RejectionCount]:
    """Reasons given for the leads created in the period that sales rejected or disqualified, with
    the taxonomy's labels (a code no longer in the taxonomy shows as itself), most frequent first.
    For one rep: the rejections and disqualifications they made."""
    mine = (" AND COALESCE(c.rejected_by, c.disqualified_by) = %(f_owner)s" if filters.owner_id is not None else "")
    rows = fetch_rows(f"""
        WITH c AS ({cohort_sql(filters.by_source, credit=True) if mine else cohort_sql(filters)})
        SELECT c.rejection_reason, COALESCE(r.label, c.rejection_reason),
               count(*) FILTER (WHERE c.status <> 'unqualified'), count(*) FILTER (WHERE c.status = 'unqualified')
        FROM c
        LEFT JOIN routing_rejectionreason r ON r.tenant_id = %(tenant)s AND r.code = c.rejection_reason
        WHERE c.rejection_reason <> ''{mine}
        GROUP BY 1, 2
        ORDER BY count(*) DESC, 2
    """, period.params(tenant) | filters.params() | {"order": STAGE_ORDER})
    return [RejectionCount(code=c, label=label, rejected=r, disqualified=d) for c, label, r, d in rows]


@dataclass
class Dashboard:
    period: DateRange
    filters: Filters
    volume: VolumeBySource
    response: ResponseTime
    sla: dict[str, SlaCompliance]
    funnel: list[FunnelStep]
    velocity: list[StageVelocity]
    aging: list[AgingBucket]
    rejections: list[RejectionCount] = field(default_factory=list)


def dashboard_for(*, tenant, period: DateRange, filters: Filters = ALL, now: dt.datetime | None = None) -> Dashboard:
    """The tenant-wide figures of the dashboard page: seven queries whatever the tenant's size."""
    return Dashboard(
        period=period,
        filters=filters,
        volume=lead_volume_by_source(tenant=tenant, period=period, filters=filters),
        response=response_time(tenant=tenant, period=period, filters=filters),
        sla=sla_compliance(tenant=tenant, period=period, now=now, filters=filters),
        funnel=stage_funnel(tenant=tenant, period=period, filters=filters),
        velocity=stage_velocity(tenant=tenant, period=period, filters=filters),
        aging=lead_aging(tenant=tenant, now=now, filters=filters),
        rejections=rejection_reasons(tenant=tenant, period=period, filters=filters),
    )
