"""Backtest a scoring model (published or draft) on the tenant's closed history: how well its scores rank the
leads that were won.

Each closed lead (one with a `leads.Outcome`: won is a conversion, lost and disqualified are not) is scored by
the engine's own SQL (`engine.scored_rows_sql` with `as_of`) as the model would have scored it when it closed:
its fields, and the signals of the model's engagement window before the close date. Nothing is written. The
database answers one row per (score, band, won) with its count, at most 101 × bands × 2 rows whatever the
history's size, and every metric is computed from that histogram: AUC (rank-based, ties counted half), the
band table, the lift of the top decile (ties at its edge shared pro rata), MQL precision and recall at the
model's auto-MQL bands, and a calibration table by score decile.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from leadmgmt.tenancy.models import Tenant

from .engine import compile_model, scored_rows_sql
from .models import ScoringModel

FIRST_YEAR, LAST_YEAR = 1970, 2999  # dates outside are typos, and the year 9999 has no day after it
MAX_RANGE_DAYS = 3660  # ten years: a longer range is a typo (year 0202), not a question
NO_HISTORY = ("No closed leads in this range. Record outcomes (won, lost, disqualified) through the opportunities, "
              "the lead page or POST /api/v1/outcomes/, or widen the range.")
ONE_CLASS = "Every closed lead in this range {verb}: AUC, lift and precision need both won and lost leads."


class BacktestRangeError(ValueError):
    """A bad `from`/`to`: `errors` is `{field: [messages]}`."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class BacktestRange:
    """Close dates from and to (both inclusive, in the tenant's time zone); None: open."""

    start: date | None = None
    end: date | None = None


def backtest_range_parse(*, start: str | None, end: str | None) -> BacktestRange:
    """`from`/`to` query values (YYYY-MM-DD, blank: open) as a range, or BacktestRangeError with field messages."""
    errors: dict[str, list[str]] = {}
    parsed: dict[str, date | None] = {}
    for field, raw in (("from", start), ("to", end)):
        raw = (raw or "").strip()
        parsed[field] = None
        if raw:
            try:
                parsed[field] = date.fromisoformat(raw)
            except ValueError:
                errors[field] = [f"“{raw[:40]}” is not a date: use YYYY-MM-DD, e.g. 2026-01-31."]
            else:
                if len(raw) != 10:
                    errors[field] = [f"“{raw[:40]}” is not a date: use YYYY-MM-DD, e.g. 2026-01-31."]
                elif not FIRST_YEAR <= parsed[field].year <= LAST_YEAR:
                    errors[field] = [f"Give a date between {FIRST_YEAR} and {LAST_YEAR}."]
    if errors:
        raise BacktestRangeError(errors)
    low, high = parsed["from"], parsed["to"]
    if low and high:
        if low > high:
            raise BacktestRangeError({"to": [f"The range ends ({high}) before it starts ({low})."]})
        if (high - low).days + 1 > MAX_RANGE_DAYS:
            raise BacktestRangeError({"from": [f"The range is longer than {MAX_RANGE_DAYS} days: shorten it, or "
                                               "leave both dates blank for the whole history."]})
    return BacktestRange(start=low, end=high)


def _bounds(tenant: Tenant, span: BacktestRange) -> tuple[datetime | None, datetime | None]:
    """The range as instants: from midnight of `start` to midnight after `end`, in the tenant's time zone."""
    try:
        zone = ZoneInfo(tenant.timezone or "UTC")
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    low = datetime.combine(span.start, time.min, tzinfo=zone) if span.start else None
    high = datetime.combine(span.end + timedelta(days=1), time.min, tzinfo=zone) if span.end else None
    return low, high


def _histogram(*, model: ScoringModel, tenant: Tenant, span: BacktestRange, now: datetime):
    """(compiled model, [(score, band, won, count)]) of the closed leads of `span`, scored at their close."""
    compiled = compile_model(model)
    low, high = _bounds(tenant, span)
    population = "SELECT o.lead_id, o.closed_at AS as_of FROM leads_outcome o WHERE o.tenant_id = %(tenant)s"
    if low is not None:
        compiled.p("bt_from", low)
        population += " AND o.closed_at >= %(bt_from)s"
    if high is not None:
        compiled.p("bt_to", high)
        population += " AND o.closed_at < %(bt_to)s"
    rows_sql = scored_rows_sql(compiled, tenant_id=tenant.pk, now=now, as_of=population)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL enable_nestloop = off")  # the CTE of closed leads is misestimated: hash joins
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"SELECT r.score, r.band, o.result = 'won', count(*) FROM ({rows_sql}) r "
            "JOIN leads_outcome o ON o.tenant_id = %(tenant)s AND o.lead_id = r.id GROUP BY 1, 2, 3",
            compiled.params)
        return compiled, [(int(s), b or "", bool(w), int(n)) for s, b, w, n in cursor.fetchall()]


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def auc_from_histogram(per_score: dict[int, list[int]]) -> float | None:
    """ROC AUC from {score: [lost, won]}: the chance a won lead outscores a lost one, a tie counting half."""
    positives = sum(w for _l, w in per_score.values())
    negatives = sum(lo for lo, _w in per_score.values())
    if not positives or not negatives:
        return None
    below, pairs = 0, 0.0
    for score in sorted(per_score):
        lost, won = per_score[score]
        pairs += won * (below + lost / 2)
        below += lost
    return round(pairs / (positives * negatives), 4)


def top_decile(per_score: dict[int, list[int]], total: int, overall: float | None) -> dict:
    """Conversion of the top 10 % by score and its lift over the overall rate; the leads tied at the edge of the
    decile count pro rata (the expected result of breaking the tie at random)."""
    size = total / 10
    left, won_in = size, 0.0
    for score in sorted(per_score, reverse=True):
        if left <= 0:
            break
        lost, won = per_score[score]
        take = min(left, lost + won)
        won_in += won * take / (lost + won)
        left -= take
    rate = _rate(won_in, size)
    return {"count": round(size, 1), "conversions": round(won_in, 1), "conversion_rate": rate,
            "lift": round(rate / overall, 2) if rate is not None and overall else None}


def model_backtest(*, model: ScoringModel, span: BacktestRange | None = None, now: datetime | None = None) -> dict:
    """The backtest report of `model` on its tenant's outcomes closed in `span` (see the module docstring).

    No closed history (or none in the range) is an answer, not an error: `count` 0, metrics null and `message`.
    """
    from django.utils import timezone

    span = span or BacktestRange()
    tenant = model.tenant
    compiled, rows = _histogram(model=model, tenant=tenant, span=span, now=now or timezone.now())
    bands = compiled.bands
    total = sum(n for *_r, n in rows)
    won_total = sum(n for _s, _b, won, n in rows if won)
    overall = _rate(won_total, total)
    per_score: dict[int, list[int]] = {}
    per_band: dict[str, list[int]] = {}
    for score, band, won, n in rows:
        per_score.setdefault(score, [0, 0])[int(won)] += n
        per_band.setdefault(band, [0, 0])[int(won)] += n
    band_rows = []
    for band in bands:
        lost, won = per_band.get(band.key, (0, 0))
        band_rows.append({"key": band.key, "name": band.name, "min_score": band.min_score,
                          "max_score": band.max_score, "auto_mql": band.auto_mql, "count": lost + won,
                          "conversions": won, "conversion_rate": _rate(won, lost + won)})
    stray = [v for key, v in per_band.items() if key not in {b.key for b in bands}]
    if stray:  # a draft's bands may leave a gap until it is published
        lost, won = sum(v[0] for v in stray), sum(v[1] for v in stray)
        band_rows.append({"key": "", "name": "In no band", "min_score": None, "max_score": None, "auto_mql": False,
                          "count": lost + won, "conversions": won, "conversion_rate": _rate(won, lost + won)})
    # MQL: a lead in an auto-MQL band is an MQL (the engine's rule); one line per auto-MQL band, each counting
    # that band and the auto-MQL bands above it, the first line being the model's MQL threshold itself.
    mql_bands = [b for b in bands if b.auto_mql]
    thresholds = []
    for band in mql_bands:
        keys = {b.key for b in mql_bands if b.min_score >= band.min_score}
        flagged = sum(sum(per_band.get(k, (0, 0))) for k in keys)
        hits = sum(per_band.get(k, (0, 0))[1] for k in keys)
        thresholds.append({"band": band.key, "threshold": band.min_score, "flagged": flagged, "flagged_won": hits,
                           "precision": _rate(hits, flagged), "recall": _rate(hits, won_total)})
    calibration = []
    for low in range(0, 100, 10):
        high = 100 if low == 90 else low + 9
        cells = [(s, v) for s, v in per_score.items() if low <= s <= high]
        count = sum(sum(v) for _s, v in cells)
        won = sum(v[1] for _s, v in cells)
        calibration.append({"min_score": low, "max_score": high, "count": count, "conversions": won,
                            "mean_score": round(sum(s * sum(v) for s, v in cells) / count, 1) if count else None,
                            "conversion_rate": _rate(won, count)})
    message = ""
    if not total:
        message = NO_HISTORY
    elif won_total in (0, total):
        message = ONE_CLASS.format(verb="was won" if won_total else "was lost or disqualified")
    return {
        "model": {"id": model.pk, "version": model.version, "name": model.name, "status": model.status},
        "from": span.start, "to": span.end,
        "count": total, "conversions": won_total, "conversion_rate": overall,
        "auc": auc_from_histogram(per_score),
        "top_decile": top_decile(per_score, total, overall) if total else
        {"count": 0, "conversions": 0, "conversion_rate": None, "lift": None},
        "mql": thresholds[0] if thresholds else None,
        "mql_thresholds": thresholds,
        "bands": band_rows,
        "calibration": calibration,
        "message": message,
    }
