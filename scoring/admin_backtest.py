"""The scoring admin's backtest page: a model's backtest on the closed leads and, for any version that is not the
published one, the published model's beside it (the what-if, with outcomes). Same range and role as the API."""
from __future__ import annotations

from django.db import DatabaseError

from leadmgmt.tenancy.admin_base import request_role
from leadmgmt.tenancy.roles import SCORING_BACKTEST, may

from .backtest import BacktestRangeError, backtest_range_parse, model_backtest
from .models import ScoringModel
from .services import scoring_model_published


def backtest_allowed(request) -> bool:
    return request.user.is_superuser or may(request_role(request), SCORING_BACKTEST)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def _number(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _column(report: dict) -> dict:
    """The report with its rates and ratios as display text."""
    top, mql = report["top_decile"], report["mql"]
    return {
        **report,
        "auc_text": _number(report["auc"], 3),
        "rate_text": _percent(report["conversion_rate"]),
        "lift_text": "—" if top["lift"] is None else f"{top['lift']:.2f}×",
        "top_rate_text": _percent(top["conversion_rate"]),
        "precision_text": _percent(mql["precision"]) if mql else "—",
        "recall_text": _percent(mql["recall"]) if mql else "—",
        "mql_threshold": mql["threshold"] if mql else None,
        "band_rows": [{**b, "rate_text": _percent(b["conversion_rate"])} for b in report["bands"]],
        "mql_rows": [{**m, "precision_text": _percent(m["precision"]), "recall_text": _percent(m["recall"])}
                     for m in report["mql_thresholds"]],
        "calibration_rows": [{**c, "rate_text": _percent(c["conversion_rate"]),
                              "mean_text": _number(c["mean_score"], 1)} for c in report["calibration"] if c["count"]],
    }


def backtest_page_context(*, model: ScoringModel, params) -> dict:
    """The page's columns (this model, then the published one when this is another version), range and errors."""
    start, end = params.get("from", ""), params.get("to", "")
    context: dict = {"range_from": start, "range_to": end, "errors": {}, "columns": [], "db_error": None}
    try:
        span = backtest_range_parse(start=start, end=end)
    except BacktestRangeError as exc:
        context["errors"] = exc.errors
        return context
    models = [model]
    published = scoring_model_published(tenant=model.tenant)
    if published is not None and published.pk != model.pk:
        models.append(published)
    try:
        context["columns"] = [_column(model_backtest(model=m, span=span)) for m in models]
    except DatabaseError as exc:  # never a 500: say what the database refused (a draft's bad regex)
        context["db_error"] = str(exc).strip().splitlines()[0]
    if len(context["columns"]) == 2:
        this, other = context["columns"]
        context["summary"] = [
            ("AUC", this["auc_text"], other["auc_text"]),
            ("Top-decile lift", this["lift_text"], other["lift_text"]),
            ("MQL threshold", this["mql_threshold"] or "—", other["mql_threshold"] or "—"),
            ("MQL precision", this["precision_text"], other["precision_text"]),
            ("MQL recall", this["recall_text"], other["recall_text"]),
        ]
    return context
