"""The funnel plan's reads (seed 001, step 1 "Define outcomes before process"): working backwards from a revenue
target to the won deals, opportunities, SALs, MQLs and leads needed per month, the stage rates measured over the
tenant's last months, and each month's actual counts against the plan.

Actual counts per month (whole months in the tenant's time zone) come from one statement: leads created in the
month; MQLs, SALs and opportunities that *reached* that stage in the month (a lead's first stage move to that stage
or a later one, from `leads_stagetransition`); deals won in the month and their revenue in the plan's currency
(`leads_outcome`). Measured rates are the ratios of those counts over the last N complete months, each capped at 1.
"""
from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from .dashboards import STAGE_ORDER, fetch_rows
from .models import FunnelPlan, PlanPeriod

RATE_FIELDS = ("lead_to_mql", "mql_to_sal", "sal_to_opportunity", "opportunity_to_won")
RATE_LABELS = {"lead_to_mql": "Lead → MQL", "mql_to_sal": "MQL → SAL", "sal_to_opportunity": "SAL → opportunity",
               "opportunity_to_won": "Opportunity → won"}
STAGES = ("leads", "mqls", "sals", "opportunities", "won")
STAGE_LABELS = {"leads": "Leads", "mqls": "MQLs", "sals": "SALs", "opportunities": "Opportunities", "won": "Won deals"}
SHOWN_MONTHS = 6  # the current month and the five before it


def month_add(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def tenant_today(tenant) -> tuple[dt.date, str]:
    tz = tenant.timezone or "UTC"
    try:
        return timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date(), tz
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.now().date(), "UTC"


@dataclass(frozen=True)
class Needs:
    """What one month of the plan needs (unrounded; `whole()` rounds each up, as a plan does)."""

    revenue: Decimal
    won: Decimal
    opportunities: Decimal
    sals: Decimal
    mqls: Decimal
    leads: Decimal

    def whole(self) -> dict[str, int]:
        return {stage: math.ceil(getattr(self, stage) - Decimal("1e-9")) for stage in STAGES}


def plan_needs(*, revenue_target: Decimal, target_period: str, average_contract_value: Decimal,
               rates: dict[str, Decimal]) -> Needs:
    """Work backwards: won deals = monthly target / ACV, opportunities = won / win rate, SALs = opportunities /
    SAL → opportunity, MQLs = SALs / MQL → SAL, leads = MQLs / lead → MQL. A quarterly target is a third a month."""
    revenue = Decimal(revenue_target) / (3 if target_period == PlanPeriod.QUARTER else 1)
    won = revenue / Decimal(average_contract_value)
    opportunities = won / Decimal(rates["opportunity_to_won"])
    sals = opportunities / Decimal(rates["sal_to_opportunity"])
    mqls = sals / Decimal(rates["mql_to_sal"])
    leads = mqls / Decimal(rates["lead_to_mql"])
    return Needs(revenue=revenue, won=won, opportunities=opportunities, sals=sals, mqls=mqls, leads=leads)


@dataclass
class MonthActual:
    month: dt.date
    leads: int = 0
    mqls: int = 0
    sals: int = 0
    opportunities: int = 0
    won: int = 0
    revenue: Decimal = Decimal(0)


ACTUALS_SQL = """
    WITH moved AS (
        SELECT t.lead_id,
               min(t.at) FILTER (WHERE array_position(%(order)s::text[], t.to_stage::text) >= 2) AS mql_at,
               min(t.at) FILTER (WHERE array_position(%(order)s::text[], t.to_stage::text) >= 3) AS sal_at,
               min(t.at) FILTER (WHERE array_position(%(order)s::text[], t.to_stage::text) >= 5) AS opportunity_at
        FROM leads_stagetransition t
        WHERE t.tenant_id = %(tenant)s
          AND t.lead_id IN (SELECT lead_id FROM leads_stagetransition
                            WHERE tenant_id = %(tenant)s AND at >= %(since)s AND at < %(until)s)
        GROUP BY t.lead_id
    ), events AS (
        SELECT 'leads' AS kind, l.created_at AS at, NULL::numeric AS amount FROM leads_lead l
        WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(since)s AND l.created_at < %(until)s
        UNION ALL SELECT 'mqls', mql_at, NULL FROM moved WHERE mql_at >= %(since)s AND mql_at < %(until)s
        UNION ALL SELECT 'sals', sal_at, NULL FROM moved WHERE sal_at >= %(since)s AND sal_at < %(until)s
        UNION ALL SELECT 'opportunities', opportunity_at, NULL FROM moved
                  WHERE opportunity_at >= %(since)s AND opportunity_at < %(until)s
        UNION ALL SELECT 'won', o.closed_at, CASE WHEN o.currency = %(currency)s THEN o.amount END FROM leads_outcome o
                  WHERE o.tenant_id = %(tenant)s AND o.result = 'won'
                    AND o.closed_at >= %(since)s AND o.closed_at < %(until)s
    )
    SELECT date_trunc('month', at AT TIME ZONE %(tz)s)::date, kind, count(*), COALESCE(sum(amount), 0)
    FROM events GROUP BY 1, 2
"""


def funnel_actuals(*, tenant, first: dt.date, last: dt.date, tz: str, currency: str = "") -> list[MonthActual]:
    """Each month from `first` to `last` (first days) with its actual counts: one query."""
    zone = zoneinfo.ZoneInfo(tz)
    since = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    until = dt.datetime.combine(month_add(last, 1), dt.time(), tzinfo=zone)
    months = []
    month = first
    while month <= last:
        months.append(MonthActual(month=month))
        month = month_add(month, 1)
    index = {m.month: m for m in months}
    for month, kind, count, amount in fetch_rows(ACTUALS_SQL, {
            "tenant": tenant.pk, "since": since, "until": until, "tz": tz, "order": STAGE_ORDER,
            "currency": currency}):
        row = index.get(month)
        if row is not None:
            setattr(row, kind, count)
            if kind == "won":
                row.revenue = Decimal(amount)
    return months


def measured_rates(months: list[MonthActual]) -> dict[str, Decimal | None]:
    """The stage rates over `months` (summed counts; a rate with no denominator is None; capped at 1)."""
    totals = {stage: sum(getattr(m, stage) for m in months) for stage in STAGES}
    pairs = zip(RATE_FIELDS, zip(STAGES, STAGES[1:], strict=False), strict=True)
    out: dict[str, Decimal | None] = {}
    for rate, (before, after) in pairs:
        out[rate] = (min(Decimal(totals[after]) / totals[before], Decimal(1)).quantize(Decimal("0.0001"))
                     if totals[before] and totals[after] else None)
    return out


def funnel_plan_get(*, tenant) -> FunnelPlan | None:
    return FunnelPlan.objects.for_tenant(tenant).first()


@dataclass
class PlanReport:
    """The plan page and `GET /api/v1/funnel-plan/`: the plan, the rates in use, what a month needs and the months'
    actuals against it."""

    plan: FunnelPlan | None
    today: dt.date
    entered_rates: dict[str, Decimal]
    measured_rates: dict[str, Decimal | None]
    measured_from: dt.date
    measured_to: dt.date
    rates: dict[str, Decimal]  # in use
    needs: Needs | None
    months: list[MonthActual]  # newest first

    @property
    def rates_missing(self) -> list[str]:
        """Measured rates asked for but not measurable (no lead reached the stage): the entered rate stands in."""
        if self.plan is None or not self.plan.use_measured_rates:
            return []
        return [RATE_LABELS[r] for r in RATE_FIELDS if self.measured_rates[r] is None]

    def rows(self) -> list[dict]:
        """Per month and stage: actual, plan, share of plan."""
        need = self.needs.whole() if self.needs is not None else None
        out = []
        for m in self.months:
            cells = []
            for stage in STAGES:
                actual = getattr(m, stage)
                planned = need[stage] if need else None
                cells.append({"stage": stage, "label": STAGE_LABELS[stage], "actual": actual, "plan": planned,
                              "share": (actual / planned) if planned else None})
            out.append({"month": m.month, "current": m.month == self.today.replace(day=1), "cells": cells,
                        "revenue": m.revenue})
        return out


def plan_report(*, tenant, plan: FunnelPlan | None = None, today: dt.date | None = None) -> PlanReport:
    """The plan (the tenant's, unless given: a form's unsaved values) with its actuals: one query for the actuals
    (and one for the plan when not given)."""
    if plan is None:
        plan = funnel_plan_get(tenant=tenant)
    local_today, tz = tenant_today(tenant)
    today = today or local_today
    current = today.replace(day=1)
    measure_months = plan.measured_months if plan is not None else 6
    first = month_add(current, -max(SHOWN_MONTHS - 1, measure_months))
    months = funnel_actuals(tenant=tenant, first=first, last=current, tz=tz,
                            currency=plan.currency if plan is not None else "")
    measured_from = month_add(current, -measure_months)
    measured = measured_rates([m for m in months if measured_from <= m.month < current])
    entered = {r: getattr(plan, r) if plan is not None else FunnelPlan._meta.get_field(r).default for r in RATE_FIELDS}
    rates = {r: (measured[r] if plan is not None and plan.use_measured_rates and measured[r] is not None
                 else Decimal(entered[r])) for r in RATE_FIELDS}
    needs = plan_needs(revenue_target=plan.revenue_target, target_period=plan.target_period,
                       average_contract_value=plan.average_contract_value, rates=rates) if plan is not None else None
    shown = [m for m in months if m.month > month_add(current, -SHOWN_MONTHS)]
    return PlanReport(plan=plan, today=today, entered_rates=entered, measured_rates=measured,
                      measured_from=measured_from, measured_to=month_add(current, -1), rates=rates, needs=needs,
                      months=list(reversed(shown)))
