"""The feedback-loop report's page (`/reports/feedback/`) and its CSV (`/reports/feedback.csv`), for marketing ops,
managers and admins (`report.feedback`); the range form the API shares. The figures are `feedback_report`'s."""
from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.roles import REPORT_FEEDBACK, may

from .export import csv_cell
from .feedback_report import (
    MAX_DAYS,
    REJECTION_DIMENSIONS,
    WON_DIMENSIONS,
    FeedbackReport,
    feedback_report,
    last_full_month,
)

EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


class FeedbackRangeForm(forms.Form):
    """`from` and `to` (whole days, inclusive, in the tenant's time zone): both or neither (the last full month),
    `from` on or before `to`, at most a year. Python keywords as field names, so they are added in __init__."""

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        date = {"required": False, "widget": forms.DateInput(attrs={"type": "date"}),
                "error_messages": {"invalid": "Enter a date as YYYY-MM-DD."}}
        self.fields["from"] = forms.DateField(label="From", **date)
        self.fields["to"] = forms.DateField(label="To", **date)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        start, end = data.get("from"), data.get("to")
        for name, value in (("from", start), ("to", end)):
            if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
                self.add_error(name, f"Pick a date between {EARLIEST_DATE:%Y-%m-%d} and {LATEST_DATE:%Y-%m-%d}.")
        if self.errors:
            return data
        if start is None and end is None:
            start, end = last_full_month(self.today)
        elif start is None or end is None:
            self.add_error("from" if start is None else "to",
                           "Give both dates, or neither for the last full month.")
            return data
        if start > end:
            self.add_error("from", "The start date must be on or before the end date.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("from", f"Pick at most {MAX_DAYS} days.")
        data["from"], data["to"] = start, end
        return data


def tenant_today(tenant) -> dt.date:
    try:
        return timezone.now().astimezone(zoneinfo.ZoneInfo(tenant.timezone or "UTC")).date()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.now().date()


def _allowed(request) -> None:
    membership = getattr(request, "membership", None)
    if getattr(request, "tenant", None) is None or membership is None or not may(membership.role, REPORT_FEEDBACK):
        raise PermissionDenied("The feedback report is for marketing ops, managers and admins.")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _rejection_table(report: FeedbackReport, dim: str) -> list[dict]:
    """One dimension's rows: each value with its total and its reasons (most frequent first)."""
    grouped: dict[str, dict] = {}
    for row in report.rejections[dim]:
        entry = grouped.setdefault(row.value, {"value": row.value, "total": 0, "reasons": []})
        entry["total"] += row.count
        entry["reasons"].append(f"{row.reason_label} {row.count}")
    return sorted(grouped.values(), key=lambda e: (-e["total"], e["value"]))


@require_GET
@login_required
def feedback_page(request):
    """The report for the range asked (default: the last full month); 400 with the messages beside the fields and
    the default month's figures for a bad range."""
    _allowed(request)
    today = tenant_today(request.tenant)
    form = FeedbackRangeForm(request.GET or None, today=today)
    valid = not form.is_bound or form.is_valid()
    if form.is_bound and valid:
        start, end = form.cleaned_data["from"], form.cleaned_data["to"]
    else:
        start, end = last_full_month(today)
        if not form.is_bound:
            form = FeedbackRangeForm(initial={"from": start, "to": end}, today=today)
    report = feedback_report(tenant=request.tenant, start=start, end=end)
    threshold = report.threshold
    return render(request, "workspace/feedback_report.html", {
        "form": form, "report": report, "start": start, "end": end,
        "rejection_tables": [{"key": dim, "label": label, "rows": _rejection_table(report, dim)}
                             for dim, label in REJECTION_DIMENSIONS.items()],
        "acceptance": [{"row": r, "rate": _pct(r.acceptance_rate)} for r in report.acceptance],
        "acceptance_total": _pct(report.acceptance_total.acceptance_rate),
        "won_tables": [{"key": dim, "label": label, "rows": report.won[dim]} for dim, label in WON_DIMENSIONS.items()],
        "threshold": threshold, "target": _pct(threshold.target),
        "current_acceptance": _pct(threshold.current_acceptance),
        "expected_acceptance": _pct(threshold.expected_acceptance),
        "csv_query": f"from={start:%Y-%m-%d}&to={end:%Y-%m-%d}",
    }, status=200 if valid else 400)


def feedback_csv_rows(report: FeedbackReport) -> list[list]:
    """Every section of the report as rows: a section column first, so one sheet holds them all."""
    rows: list[list] = [["section", "group", "value", "reason / currency", "count", "amount / rate / days", "extra"]]
    for r in report.rejections_by_reason:
        rows.append(["rejections", "reason", r.reason_label, r.reason, r.count, "", ""])
    for dim, label in REJECTION_DIMENSIONS.items():
        for r in report.rejections[dim]:
            rows.append(["rejections", label, r.value, r.reason_label, r.count, "", ""])
    for r in [*report.acceptance, report.acceptance_total]:
        rows.append(["mql acceptance", "source", r.source, f"accepted {r.accepted}, rejected {r.rejected}, "
                     f"pending {r.pending}", r.handed, "" if r.acceptance_rate is None else r.acceptance_rate, ""])
    for dim, label in WON_DIMENSIONS.items():
        for r in report.won[dim]:
            rows.append(["won revenue", label, r.value, r.currency, r.won, r.revenue, ""])
    for r in report.won_total:
        rows.append(["won revenue", "total", "", r.currency, r.won, r.revenue, ""])
    for r in [*report.time_to_convert, report.time_to_convert_total]:
        rows.append(["time to convert", "source", r.source, "median days", r.won, r.median_days,
                     f"p75 {'' if r.p75_days is None else r.p75_days}"])
    t = report.threshold
    rows.append(["mql threshold", "target", "", "", "", t.target, ""])
    rows.append(["mql threshold", "current", t.current, "", t.current_volume, t.current_acceptance, ""])
    rows.append(["mql threshold", "recommended", t.recommended, "", t.recommended_volume, t.expected_acceptance,
                 t.message])
    for point in t.curve:
        rows.append(["mql threshold", "curve", point["score"], "", point["decided"], point["acceptance_rate"],
                     f"accepted {point['accepted']}"])
    return rows


def feedback_csv_text(*, tenant, actor: Actor, report: FeedbackReport, source: str) -> str:
    """The CSV text (BOM first, cells escaped against formula injection), audited as `report.feedback_exported`."""
    rows = feedback_csv_rows(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    with transaction.atomic():
        audit_record(tenant=tenant, actor=actor, action="report.feedback_exported", object_type="workspace.report",
                     metadata={"report": "feedback", "from": report.start.isoformat(), "to": report.end.isoformat(),
                               "rows": len(rows) - 1, "source": source})
    return "\ufeff" + out.getvalue()


@require_GET
@login_required
def feedback_csv(request):
    """The same figures as the page as one CSV; a bad range is a 400 with the messages as text."""
    _allowed(request)
    form = FeedbackRangeForm(request.GET or None, today=tenant_today(request.tenant))
    if form.is_bound and not form.is_valid():
        text = "\n".join(f"{name}: {message}" for name, messages in form.errors.items() for message in messages)
        return HttpResponse("The export was not made:\n" + text + "\n", status=400,
                            content_type="text/plain; charset=utf-8")
    start, end = ((form.cleaned_data["from"], form.cleaned_data["to"]) if form.is_bound
                  else last_full_month(tenant_today(request.tenant)))
    report = feedback_report(tenant=request.tenant, start=start, end=end)
    body = feedback_csv_text(tenant=request.tenant, actor=Actor.for_user(request.user), report=report, source="page")
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    name = f"{request.tenant.slug}-feedback-{start:%Y-%m-%d}-to-{end:%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response
