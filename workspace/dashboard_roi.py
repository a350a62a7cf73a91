"""Source ROI on the dashboards (issue 16 point 7, seed 003 "Analyze source performance"): per source and campaign,
what it cost in the period, the leads it brought (created in the period), how many of them reached MQL and SQL and
were won, the revenue of those won deals, the cost per lead, MQL, SQL and won deal, and the ROI
((revenue − cost) / cost).

One statement. Costs are monthly (`SourceCost`): a month counts pro rata to the days of it inside the period, so a
30-day period across two months takes part of each. A lead's campaign is its `campaign`, else its `utm_campaign`; a
cost with a blank campaign is the source's spend on no one campaign (it counts in the source's row only). Money is
in one currency: the one most of the period's costs are in (else that of most won deals); costs and revenue in other
currencies are left out and counted in `other_currency`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .dashboards import ALL, NO_SOURCE, STAGE_ORDER, DateRange, Filters, fetch_rows

ALL_CAMPAIGNS = "All campaigns"
NO_CAMPAIGN = "(no campaign)"

ROI_SQL = f"""
    WITH cohort AS (
        SELECT COALESCE(NULLIF(l.source, ''), '{NO_SOURCE}') AS source,
               COALESCE(NULLIF(l.campaign, ''), l.utm_campaign) AS campaign,
               GREATEST(array_position(%(order)s::text[], l.stage::text), COALESCE(m.reached, 1),
                        CASE WHEN l.status = 'converted' THEN 5 ELSE 1 END) AS reached,
               o.id AS won_id, o.amount, NULLIF(o.currency, '') AS currency
        FROM leads_lead l
        LEFT JOIN LATERAL (SELECT max(array_position(%(order)s::text[], t.to_stage::text)) AS reached
                           FROM leads_stagetransition t
                           WHERE t.tenant_id = l.tenant_id AND t.lead_id = l.id) m ON true
        LEFT JOIN leads_outcome o ON o.tenant_id = l.tenant_id AND o.lead_id = l.id AND o.result = 'won'
        WHERE l.tenant_id = %(tenant)s AND l.created_at >= %(since)s AND l.created_at < %(until)s{{lead_filter}}
    ), costs AS (
        SELECT c.source, c.campaign, c.currency,
               c.amount * (LEAST(c.month + interval '1 month', %(end_day)s::date + 1)::date
                           - GREATEST(c.month, %(start_day)s::date))
                        / ((c.month + interval '1 month')::date - c.month)::numeric AS amount
        FROM workspace_sourcecost c
        WHERE c.tenant_id = %(tenant)s AND c.month <= %(end_day)s::date
          AND c.month > %(start_day)s::date - interval '1 month'{{cost_filter}}
    ), money AS (
        SELECT COALESCE((SELECT currency FROM costs GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1),
                        (SELECT currency FROM cohort WHERE amount IS NOT NULL
                         GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1), '') AS currency
    ), lead_side AS (
        SELECT source, COALESCE(campaign, '') AS campaign, count(*) AS leads,
               count(*) FILTER (WHERE reached >= 2) AS mqls, count(*) FILTER (WHERE reached >= 4) AS sqls,
               count(won_id) AS won,
               sum(amount) FILTER (WHERE currency = (SELECT currency FROM money)) AS revenue
        FROM cohort GROUP BY 1, 2
    ), cost_side AS (
        SELECT source, campaign, sum(amount) AS cost FROM costs
        WHERE currency = (SELECT currency FROM money) GROUP BY 1, 2
    ), joined AS (
        SELECT COALESCE(a.source, b.source) AS source, COALESCE(a.campaign, b.campaign) AS campaign,
               COALESCE(a.leads, 0) AS leads, COALESCE(a.mqls, 0) AS mqls, COALESCE(a.sqls, 0) AS sqls,
               COALESCE(a.won, 0) AS won, a.revenue, b.cost
        FROM lead_side a FULL JOIN cost_side b ON a.source = b.source AND a.campaign = b.campaign
    )
    SELECT source, campaign, GROUPING(source) AS all_sources, GROUPING(campaign) AS all_campaigns,
           sum(leads), sum(mqls), sum(sqls), sum(won), sum(revenue), sum(cost), (SELECT currency FROM money),
           (SELECT count(*) FROM costs WHERE currency <> (SELECT currency FROM money))
             + (SELECT count(*) FROM cohort WHERE amount IS NOT NULL AND currency <> (SELECT currency FROM money)) AS other_currency
    FROM joined
    GROUP BY GROUPING SETS ((source), (source, campaign), ())
    ORDER BY GROUPING(source), sum(sum(cost)) OVER (PARTITION BY source) DESC NULLS LAST,
             sum(sum(leads)) OVER (PARTITION BY source) DESC, source, GROUPING(campaign) DESC,
             sum(cost) DESC NULLS LAST, sum(leads) DESC, campaign
"""


@dataclass
class RoiRow:
    source: str
    campaign: str  # ALL_CAMPAIGNS on a source's row, "" for leads and costs without a campaign
    leads: int
    mqls: int
    sqls: int
    won: int
    revenue: Decimal | None
    cost: Decimal | None
    is_source: bool = False  # the source's total (every campaign)

    @staticmethod
    def _per(cost, n):
        return (cost / n).quantize(Decimal("0.01")) if cost is not None and n else None

    @property
    def per_lead(self):
        return self._per(self.cost, self.leads)

    @property
    def per_mql(self):
        return self._per(self.cost, self.mqls)

    @property
    def per_sql(self):
        return self._per(self.cost, self.sqls)

    @property
    def per_won(self):
        return self._per(self.cost, self.won)

    @property
    def roi(self) -> float | None:
        """(revenue − cost) / cost; None without a cost."""
        if not self.cost:
            return None
        return float(((self.revenue or Decimal(0)) - self.cost) / self.cost)


@dataclass
class SourceRoi:
    currency: str
    rows: list[RoiRow] = field(default_factory=list)  # each source's total, then its campaigns
    total: RoiRow | None = None
    other_currency: int = 0  # costs and won deals left out: in another currency


def source_roi(*, tenant, period: DateRange, filters: Filters = ALL) -> SourceRoi:
    """The Source ROI for the leads created in `period` and the costs of its days (one query). A source filter
    narrows both; the rep filter does not apply (spend is per source, not per rep)."""
    only_source = filters.source is not None
    sql = ROI_SQL.replace("{lead_filter}", " AND l.source = %(f_source)s" if only_source else "").replace(
        "{cost_filter}", " AND c.source = %(f_source)s" if only_source else "")
    params = period.params(tenant) | {"order": STAGE_ORDER, "start_day": period.start, "end_day": period.end,
                                      "f_source": filters.source}
    result = SourceRoi(currency="")
    for (source, campaign, all_sources, all_campaigns, leads, mqls, sqls, won, revenue, cost, currency,
         other) in fetch_rows(sql, params):
        result.currency, result.other_currency = currency, other
        row = RoiRow(source=source or "", campaign=ALL_CAMPAIGNS if all_campaigns else (campaign or NO_CAMPAIGN),
                     leads=leads, mqls=mqls, sqls=sqls, won=won,
                     revenue=revenue.quantize(Decimal("0.01")) if revenue is not None else None,
                     cost=cost.quantize(Decimal("0.01")) if cost is not None else None,
                     is_source=bool(all_campaigns) and not all_sources)
        if all_sources:
            row.source, row.campaign = "All sources", ""
            result.total = row if (leads or cost is not None) else None
        else:
            result.rows.append(row)
    result.rows = _without_lone_blank_campaigns(result.rows)
    return result


def _without_lone_blank_campaigns(rows: list[RoiRow]) -> list[RoiRow]:
    """A source whose only campaign row is "(no campaign)" repeats its total: keep the source's row alone."""
    campaigns: dict[str, list[RoiRow]] = {}
    for row in rows:
        if not row.is_source:
            campaigns.setdefault(row.source, []).append(row)
    lone = {source for source, rows_ in campaigns.items() if len(rows_) == 1 and rows_[0].campaign == NO_CAMPAIGN}
    return [row for row in rows if row.is_source or row.source not in lone]
