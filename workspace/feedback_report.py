"""The feedback-loop report (issue 16 point 6, seed 001 step 6): what sales' decisions and closed deals say about
marketing's leads over a period, for marketing ops to calibrate the MQL criteria — rejection reasons by source,
band, campaign and the routing and scoring rules that fired; MQL acceptance by source; the sources, industries and
titles that produce won revenue; time to convert; and a recommended MQL threshold with its expected acceptance.

`feedback_report(tenant=, start=, end=)` computes it all in five set-based statements whatever the data size (whole
days `start`–`end` in the tenant's time zone). What each figure counts:

* Rejections: every reject and disqualify a rep made in the period (the audit trail's `lead.rejected` and
  `lead.disqualified` events, with the reason they named) and every outcome recorded as disqualified (the outcome
  sync), by reason. The band is the lead's band when it was rejected (its score history), the routing rule the one
  of the last assignment before it, the scoring rules those of the lead's current score breakdown with points > 0
  (a lead counts once under each rule that gave it points).
* MQL acceptance: the leads that became MQLs in the period (their raw → MQL stage move); accepted = sales accepted
  them or they moved on (SAL, SQL, opportunity, customer), rejected = rejected, recycled or disqualified without
  having been accepted, pending = neither yet. Acceptance rate = accepted ÷ (accepted + rejected).
* Won revenue: outcomes won with a close date in the period. Amounts are never converted between currencies: each
  currency is its own row (a won deal without an amount counts as won with no currency).
* Time to convert: days from the lead's creation to its won close date, median and 75th percentile.
* Threshold: every MQL handed to sales up to the end of the period and decided (accepted or rejected), by its score
  when it became an MQL; the recommended threshold is the lowest score whose MQLs at or above it were accepted at
  least at the tenant's target rate (`FeedbackSettings`, default 60 %). MQL volume at a threshold = the leads
  created in the period whose score reaches it.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.db import connection

from leadmgmt.tenancy.models import Tenant

DEFAULT_TARGET = 60
MAX_DAYS = 366
NONE_LABEL = "(none)"
REJECTION_DIMENSIONS = {"source": "Source", "band": "Band at rejection", "campaign": "Campaign (utm_campaign)",
                        "routing_rule": "Routing rule", "scoring_rule": "Scoring rule"}
WON_DIMENSIONS = {"source": "Source", "industry": "Industry", "title": "Job title"}
ACCEPTED_STAGES = ("sal", "sql", "opportunity", "customer")
REJECTED_STATUSES = ("rejected", "recycled", "unqualified")


def last_full_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """The default period: the calendar month before `today`'s."""
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class ReasonCount:
    value: str
    reason: str
    reason_label: str
    count: int


@dataclass
class SourceAcceptance:
    source: str
    handed: int
    accepted: int
    rejected: int
    pending: int
    acceptance_rate: float | None


@dataclass
class WonRow:
    value: str
    currency: str
    won: int
    revenue: Decimal | None


@dataclass
class ConvertTime:
    source: str
    won: int
    median_days: float | None
    p75_days: float | None


@dataclass
class Threshold:
    target: float
    current: int | None
    current_acceptance: float | None
    current_volume: int | None
    recommended: int | None
    expected_acceptance: float | None
    recommended_volume: int | None
    decided: int
    message: str
    curve: list[dict] = field(default_factory=list)


@dataclass
class FeedbackReport:
    start: dt.date
    end: dt.date
    tz: str
    rejections_total: int
    rejections_by_reason: list[ReasonCount]
    rejections: dict[str, list[ReasonCount]]
    acceptance: list[SourceAcceptance]
    acceptance_total: SourceAcceptance
    won: dict[str, list[WonRow]]
    won_total: list[WonRow]
    time_to_convert: list[ConvertTime]
    time_to_convert_total: ConvertTime
    threshold: Threshold

    def as_dict(self) -> dict:
        """The JSON of the API (decimals as strings, dates ISO)."""
        def clean(value):
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, dt.date):
                return value.isoformat()
            return value
        return clean(asdict(self))


# --- the statements -------------------------------------------------------------------------------------------

_REJECTIONS_SQL = f"""
WITH ev AS (
    SELECT a.object_id::uuid AS lead_id, a.at, COALESCE(a.metadata->>'reason', '') AS code,
           COALESCE(NULLIF(a.metadata->>'label', ''), a.metadata->>'reason', '') AS label
    FROM audit_auditevent a
    WHERE a.tenant_id = %(t)s AND a.action IN ('lead.rejected', 'lead.disqualified')
      AND a.object_type = 'leads.lead' AND a.at >= %(since)s AND a.at < %(until)s
    UNION ALL
    SELECT o.lead_id, o.closed_at, COALESCE(r.code, ''),
           COALESCE(r.label, NULLIF(LEFT(o.reason, 80), ''), 'Disqualified (no reason given)')
    FROM leads_outcome o LEFT JOIN leads_lostreason r ON r.id = o.lost_reason_id AND r.tenant_id = o.tenant_id
    WHERE o.tenant_id = %(t)s AND o.result = 'disqualified' AND o.closed_at >= %(since)s AND o.closed_at < %(until)s
), x AS (
    SELECT ev.code, ev.label, l.id AS lead_id, l.scoring_model_id, l.score_breakdown,
           COALESCE(NULLIF(l.source, ''), '{NONE_LABEL}') AS source,
           COALESCE(NULLIF(l.utm_campaign, ''), '{NONE_LABEL}') AS campaign,
           COALESCE(NULLIF(COALESCE(sc.new_band, l.band), ''), '{NONE_LABEL}') AS band,
           COALESCE(NULLIF(g.rule_name, ''), '{NONE_LABEL}') AS routing_rule
    FROM ev JOIN leads_lead l ON l.tenant_id = %(t)s AND l.id = ev.lead_id
    LEFT JOIN LATERAL (SELECT c.new_band FROM scoring_scorechange c
                       WHERE c.tenant_id = %(t)s AND c.lead_id = ev.lead_id AND c.at <= ev.at
                       ORDER BY c.at DESC, c.id DESC LIMIT 1) sc ON TRUE
    LEFT JOIN LATERAL (SELECT g.rule_name FROM routing_assignment g
                       WHERE g.tenant_id = %(t)s AND g.lead_id = ev.lead_id AND g.at <= ev.at AND g.rule_name <> ''
                       ORDER BY g.at DESC, g.id DESC LIMIT 1) g ON TRUE
)
SELECT CASE WHEN GROUPING(source) = 0 THEN 'source' WHEN GROUPING(band) = 0 THEN 'band'
            WHEN GROUPING(campaign) = 0 THEN 'campaign' WHEN GROUPING(routing_rule) = 0 THEN 'routing_rule'
            ELSE 'reason' END AS dim,
       CASE WHEN GROUPING(source) = 0 THEN source WHEN GROUPING(band) = 0 THEN band
            WHEN GROUPING(campaign) = 0 THEN campaign WHEN GROUPING(routing_rule) = 0 THEN routing_rule
            ELSE '' END AS value,
       code, MAX(label), COUNT(*)
FROM x GROUP BY GROUPING SETS ((code, source), (code, band), (code, campaign), (code, routing_rule), (code))
UNION ALL
SELECT 'scoring_rule', COALESCE(r.name, b.key), x.code, MAX(x.label), COUNT(DISTINCT x.lead_id)
FROM x CROSS JOIN LATERAL jsonb_each_text(COALESCE(x.score_breakdown, '{{}}'::jsonb)) b
LEFT JOIN scoring_scoringrule r ON r.tenant_id = %(t)s AND r.model_id = x.scoring_model_id AND r.key = b.key
WHERE b.value ~ '^[0-9.]+$' AND b.value::numeric > 0
GROUP BY 2, x.code
"""

# The MQL moves of the period (or, for the threshold, of all history before its end) and how sales decided them.
_MQL_CTE = f"""
WITH m AS (
    SELECT DISTINCT ON (st.lead_id) st.lead_id, st.at FROM leads_stagetransition st
    WHERE st.tenant_id = %(t)s AND st.to_stage = 'mql' AND st.at < %(until)s {{since}}
    ORDER BY st.lead_id, st.at
), d AS (
    SELECT l.id, COALESCE(NULLIF(l.source, ''), '{NONE_LABEL}') AS source, m.at,
           (l.accepted_at IS NOT NULL OR l.stage IN {ACCEPTED_STAGES}) AS accepted,
           (l.accepted_at IS NULL AND l.stage NOT IN {ACCEPTED_STAGES}
            AND (l.rejected_at IS NOT NULL OR l.status IN {REJECTED_STATUSES})) AS rejected, l.score
    FROM m JOIN leads_lead l ON l.tenant_id = %(t)s AND l.id = m.lead_id
)
"""

_ACCEPTANCE_SQL = _MQL_CTE.format(since="AND st.at >= %(since)s") + """
SELECT GROUPING(source), COALESCE(source, ''), COUNT(*), COUNT(*) FILTER (WHERE accepted),
       COUNT(*) FILTER (WHERE rejected)
FROM d GROUP BY ROLLUP (source)
"""

# Per score at handoff (0–100: at most 101 rows), the MQLs at or above it that were decided and accepted.
_THRESHOLD_SQL = _MQL_CTE.format(since="") + """
, s AS (
    SELECT COALESCE(sc.new_score, d.score) AS score, d.accepted
    FROM d LEFT JOIN LATERAL (SELECT c.new_score FROM scoring_scorechange c
                              WHERE c.tenant_id = %(t)s AND c.lead_id = d.id AND c.at <= d.at
                              ORDER BY c.at DESC, c.id DESC LIMIT 1) sc ON TRUE
    WHERE d.accepted OR d.rejected
), per AS (
    SELECT score, COUNT(*) FILTER (WHERE accepted) AS a, COUNT(*) AS n FROM s WHERE score IS NOT NULL GROUP BY score
)
SELECT score, SUM(a) OVER (ORDER BY score DESC), SUM(n) OVER (ORDER BY score DESC) FROM per ORDER BY score
"""

# The current MQL threshold (the published model's lowest auto-MQL band), the target, and the period's leads by score.
_VOLUME_SQL = """
SELECT NULL::int, 0,
       (SELECT MIN(b.min_score)::int FROM scoring_scoreband b JOIN scoring_scoringmodel sm
            ON sm.id = b.model_id AND sm.tenant_id = %(t)s
        WHERE b.tenant_id = %(t)s AND sm.status = 'published' AND b.auto_mql),
       (SELECT f.mql_acceptance_target::int FROM workspace_feedbacksettings f WHERE f.tenant_id = %(t)s)
UNION ALL
SELECT l.score, COUNT(*)::int, NULL, NULL FROM leads_lead l
WHERE l.tenant_id = %(t)s AND l.created_at >= %(since)s AND l.created_at < %(until)s AND l.score IS NOT NULL
GROUP BY l.score
"""

_WON_SQL = f"""
WITH won AS (
    SELECT COALESCE(NULLIF(l.source, ''), '{NONE_LABEL}') AS source,
           COALESCE(NULLIF(l.industry, ''), '{NONE_LABEL}') AS industry,
           COALESCE(NULLIF(LOWER(BTRIM(l.job_title)), ''), '{NONE_LABEL}') AS title_key, BTRIM(l.job_title) AS title,
           o.amount, o.currency, EXTRACT(EPOCH FROM (o.closed_at - l.created_at)) / 86400.0 AS days
    FROM leads_outcome o JOIN leads_lead l ON l.tenant_id = %(t)s AND l.id = o.lead_id
    WHERE o.tenant_id = %(t)s AND o.result = 'won' AND o.closed_at >= %(since)s AND o.closed_at < %(until)s
), w AS (  -- one spelling per title, whatever the currency
    SELECT won.*, MIN(won.title) OVER (PARTITION BY won.title_key) AS title_shown FROM won
)
SELECT 'won', CASE WHEN GROUPING(source) = 0 THEN 'source' WHEN GROUPING(industry) = 0 THEN 'industry'
                   WHEN GROUPING(title_key) = 0 THEN 'title' ELSE 'total' END,
       CASE WHEN GROUPING(source) = 0 THEN source WHEN GROUPING(industry) = 0 THEN industry
            WHEN GROUPING(title_key) = 0 THEN COALESCE(NULLIF(MIN(title_shown), ''), '{NONE_LABEL}') ELSE '' END,
       currency, COUNT(*), SUM(amount), NULL::float8, NULL::float8
FROM w GROUP BY GROUPING SETS ((source, currency), (industry, currency), (title_key, currency), (currency))
UNION ALL
SELECT 'time', CASE WHEN GROUPING(source) = 0 THEN 'source' ELSE 'total' END, COALESCE(source, ''), '', COUNT(*),
       NULL, percentile_cont(0.5) WITHIN GROUP (ORDER BY GREATEST(days, 0)),
       percentile_cont(0.75) WITHIN GROUP (ORDER BY GREATEST(days, 0))
FROM w GROUP BY ROLLUP (source)
"""


def _fetch(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _rejections(params: dict) -> tuple[int, list[ReasonCount], dict[str, list[ReasonCount]]]:
    by_dim: dict[str, list[ReasonCount]] = defaultdict(list)
    for dim, value, code, label, count in _fetch(_REJECTIONS_SQL, params):
        by_dim[dim].append(ReasonCount(value=value, reason=code, reason_label=label or code or NONE_LABEL,
                                       count=count))
    for rows in by_dim.values():
        rows.sort(key=lambda r: (-r.count, r.value, r.reason_label))
    by_reason = by_dim.pop("reason", [])
    return (sum(r.count for r in by_reason), by_reason,
            {dim: by_dim.get(dim, []) for dim in REJECTION_DIMENSIONS})


def _acceptance(params: dict) -> tuple[list[SourceAcceptance], SourceAcceptance]:
    rows, total = [], SourceAcceptance(source="All sources", handed=0, accepted=0, rejected=0, pending=0,
                                       acceptance_rate=None)
    for grouped, source, handed, accepted, rejected in _fetch(_ACCEPTANCE_SQL, params):
        row = SourceAcceptance(source=source if not grouped else "All sources", handed=handed, accepted=accepted,
                               rejected=rejected, pending=handed - accepted - rejected,
                               acceptance_rate=_rate(accepted, accepted + rejected))
        if grouped:
            total = row
        else:
            rows.append(row)
    rows.sort(key=lambda r: (-r.handed, r.source))
    return rows, total


def _won(params: dict):
    won: dict[str, list[WonRow]] = {dim: [] for dim in WON_DIMENSIONS}
    won_total: list[WonRow] = []
    times, time_total = [], ConvertTime(source="All sources", won=0, median_days=None, p75_days=None)
    for kind, dim, value, currency, count, revenue, median, p75 in _fetch(_WON_SQL, params):
        if kind == "time":
            row = ConvertTime(source=value if dim == "source" else "All sources", won=count,
                              median_days=None if median is None else round(median, 1),
                              p75_days=None if p75 is None else round(p75, 1))
            if dim == "source":
                times.append(row)
            else:
                time_total = row
            continue
        row = WonRow(value=value, currency=currency or "", won=count, revenue=revenue)
        (won_total if dim == "total" else won[dim]).append(row)
    for rows in [*won.values(), won_total]:
        rows.sort(key=lambda r: (-(r.revenue or 0), -r.won, r.value, r.currency))
    times.sort(key=lambda r: (-r.won, r.source))
    return won, won_total, times, time_total


def _threshold(params: dict) -> Threshold:
    curve = [(score, int(accepted), int(decided)) for score, accepted, decided in _fetch(_THRESHOLD_SQL, params)]
    volume_rows = _fetch(_VOLUME_SQL, params)
    _none, _zero, current, target = volume_rows[0] if volume_rows and volume_rows[0][0] is None else (
        None, 0, None, None)
    by_score = [(score, n) for score, n, _c, _t in volume_rows if score is not None]
    target = (target or DEFAULT_TARGET) / 100

    def volume(threshold: int | None) -> int | None:
        return None if threshold is None else sum(n for score, n in by_score if score >= threshold)

    def at(threshold: int | None) -> float | None:
        """Acceptance of the decided MQLs scored at or above `threshold` (the lowest curve point reaching it)."""
        if threshold is None:
            return None
        points = [(a, n) for score, a, n in curve if score >= threshold]
        return _rate(*points[0]) if points else None

    reaching = [score for score, a, n in curve if n and a / n >= target]
    recommended = reaching[0] if reaching else None
    decided = curve[0][2] if curve else 0
    if not curve:
        message = "No MQL has been accepted or rejected yet: the recommendation needs sales' decisions."
    elif recommended is None:
        message = (f"No threshold reaches the {target:.0%} target: even the highest-scored MQLs were accepted less "
                   f"often. Review the scoring model's fit rules.")
    else:
        message = (f"The lowest score whose MQLs sales accepted at least {target:.0%} of the time, from "
                   f"{decided} MQL(s) accepted or rejected so far.")
    return Threshold(target=target, current=current, current_acceptance=at(current), current_volume=volume(current),
                     recommended=recommended, expected_acceptance=at(recommended),
                     recommended_volume=volume(recommended), decided=decided, message=message,
                     curve=[{"score": s, "accepted": a, "decided": n, "acceptance_rate": _rate(a, n)}
                            for s, a, n in curve])


def feedback_report(*, tenant: Tenant, start: dt.date, end: dt.date) -> FeedbackReport:
    """The report for whole days `start`–`end` (inclusive) in the tenant's time zone; five statements."""
    tz = tenant.timezone or "UTC"
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz, zone = "UTC", zoneinfo.ZoneInfo("UTC")
    params = {"t": tenant.pk, "since": dt.datetime.combine(start, dt.time(), tzinfo=zone),
              "until": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone)}
    total, by_reason, rejections = _rejections(params)
    acceptance, acceptance_total = _acceptance(params)
    won, won_total, times, time_total = _won(params)
    return FeedbackReport(start=start, end=end, tz=tz, rejections_total=total, rejections_by_reason=by_reason,
                          rejections=rejections, acceptance=acceptance, acceptance_total=acceptance_total, won=won,
                          won_total=won_total, time_to_convert=times, time_to_convert_total=time_total,
                          threshold=_threshold(params))
