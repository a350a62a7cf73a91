"""The dashboard page: lead volume, response time and SLA compliance, funnel, velocity, aging, rejections."""
from __future__ import annotations

import datetime as dt
import zoneinfo

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leadmgmt.tenancy.models import Role

from . import charts
from .dashboards import DEFAULT_DAYS, MAX_DAYS, Dashboard, DateRange, dashboard_for

DASHBOARD_ROLES = (Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS)
WEEKLY_FROM_DAYS = 62  # longer periods are drawn week by week unless asked otherwise
PRESETS = [(7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days")]
SLA_KIND_LABELS = {"first_contact": "First contact", "acceptance": "Acceptance"}


class DashboardRangeForm(forms.Form):
    """The period (GET): whole days in the tenant's time zone, at most a year."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(required=False, label="Group by",
                           choices=[("", "Automatic"), ("day", "Day"), ("week", "Week")])

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean()
        end = data.get("end") or self.today
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if "start" in self.errors or "end" in self.errors:
            return data
        if start > end:
            self.add_error("start", "The start date must be on or before the end date.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", f"Pick at most {MAX_DAYS} days.")
        data["start"], data["end"] = start, end
        return data

    def period(self, *, tz: str) -> DateRange:
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        unit = self.cleaned_data.get("by") or ("week" if (end - start).days + 1 > WEEKLY_FROM_DAYS else "day")
        return DateRange(start=start, end=end, tz=tz, unit=unit)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _bucket_label(day: dt.date, unit: str) -> str:
    return f"wk {day.day} {day:%b}" if unit == "week" else f"{day.day} {day:%b}"


def _cards(data: Dashboard) -> list[dict]:
    first = data.sla.get("first_contact")
    sql = data.funnel[3]
    aging = sum(b.leads for b in data.aging[2:])
    return [
        {"label": "Leads captured", "value": charts.format_number(data.volume.total),
         "note": f"{len(data.volume.totals())} source(s)"},
        {"label": "Median response", "value": charts.format_duration(data.response.median_seconds),
         "note": f"p90 {charts.format_duration(data.response.p90_seconds)} · "
                 f"{data.response.contacted} of {data.response.leads} contacted"},
        {"label": "First-contact SLA met", "value": _pct(first.rate if first else None),
         "note": f"{first.met} met, {first.breached} breached, {first.running} running" if first
         else "No SLA clock started in this period"},
        {"label": "Captured → SQL", "value": _pct(sql.from_start), "note": f"{sql.count} SQL(s)"},
        {"label": "Open leads untouched 3+ days", "value": charts.format_number(aging),
         "note": "See the Aging chart below", "alert": aging > 0},
    ]


def _charts(data: Dashboard) -> dict:
    period, volume = data.period, data.volume
    unit = "week" if period.unit == "week" else "day"
    funnel_steps = [(s.label, s.count, "" if s.from_previous is None else
                     f"{_pct(s.from_previous)} of {data.funnel[i - 1].label}") for i, s in enumerate(data.funnel)]
    return {
        "volume": charts.stacked_bars(
            title=f"Leads captured per {unit} by source",
            desc=f"{volume.total} leads from {period.start:%d %b %Y} to {period.end:%d %b %Y}: "
                 + ", ".join(f"{s} {n}" for s, n in volume.totals().items()),
            categories=[_bucket_label(b, unit) for b in volume.buckets], series=volume.counts, width=1000, height=300,
            empty_message="No leads were captured in this period. Check that your lead forms are live "
                          "(Admin → Lead forms) or pick a longer period."),
        "funnel": charts.funnel_chart(
            title="Stage funnel", desc="; ".join(f"{label}: {n}" for label, n, _note in funnel_steps),
            steps=funnel_steps,
            empty_message="No leads were captured in this period, so there is no funnel yet. Pick a longer period."),
        "velocity": charts.bar_chart(
            title="Median time before each stage move",
            desc="; ".join(f"{v.label}: {charts.format_duration(v.median_seconds)} over {v.moves} move(s)"
                           for v in data.velocity),
            labels=[v.label for v in data.velocity], values=[v.median_seconds for v in data.velocity],
            value_format=charts.format_duration, color=charts.PALETTE[2],
            empty_message="No lead changed stage in this period. Leads move when reps accept, qualify or convert them."),
        "aging": charts.bar_chart(
            title="Open leads by days untouched",
            desc="; ".join(f"{b.label}: {b.leads} ({b.unassigned} unassigned)" for b in data.aging),
            labels=[b.label for b in data.aging], values=[b.leads for b in data.aging], color=charts.PALETTE[1],
            empty_message="No open leads right now. New leads show here once they are captured and routed."),
        "rejections": charts.bar_chart(
            title="Rejection and disqualification reasons",
            desc="; ".join(f"{r.label}: {r.total}" for r in data.rejections),
            labels=[r.label for r in data.rejections], values=[r.total for r in data.rejections],
            color=charts.PALETTE[5],
            empty_message="No lead captured in this period was rejected or disqualified. Reps pick a reason "
                          "from the taxonomy (Admin → Rejection reasons) when they reject one."),
    }


@require_GET
@login_required
def dashboard(request):
    """Managers, admins and marketing ops; anyone else (reps) gets the 403 page."""
    membership = getattr(request, "membership", None)
    if request.tenant is None or membership is None or membership.role not in DASHBOARD_ROLES:
        raise PermissionDenied("Dashboards are for managers, admins and marketing ops.")
    tz = request.tenant.timezone or "UTC"
    try:
        today = timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz, today = "UTC", timezone.now().date()
    form = DashboardRangeForm(request.GET or None, today=today)
    if form.is_bound and form.is_valid():
        period = form.period(tz=tz)
    else:
        period = DateRange.default(tz=tz, today=today)
        if not form.is_bound:
            form = DashboardRangeForm(initial={"start": period.start, "end": period.end}, today=today)
    data = dashboard_for(tenant=request.tenant, period=period)
    presets = [{"label": label, "start": today - dt.timedelta(days=days - 1), "end": today,
                "active": period.end == today and (period.end - period.start).days + 1 == days}
               for days, label in PRESETS]
    return render(request, "leads/dashboard.html", {
        "form": form, "period": period, "data": data, "cards": _cards(data), "charts": _charts(data),
        "presets": presets,
        "response": {"median": charts.format_duration(data.response.median_seconds),
                     "p90": charts.format_duration(data.response.p90_seconds)}, "sla_rows": [(SLA_KIND_LABELS.get(k, k), v, _pct(v.rate)) for k, v in data.sla.items()],
    })
