"""The dashboard page and its CSV exports: lead volume, response time and SLA compliance, funnel,
velocity, aging, rejections, and their breakdowns per rep and per source; a rep's own numbers
(`/dashboard/me/`) and a manager's view of one rep (`/dashboard/reps/<membership id>/`)."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.roles import COSTS_EDIT, COSTS_VIEW, PLAN_VIEW, may
from routing.selectors import REP_ROLES

from . import charts
from .dashboard_breakdowns import Breakdowns, Reach, breakdowns_for, dashboard_reach, lead_sources
from .dashboard_reps import rep_numbers
from .dashboard_roi import source_roi
from .dashboard_tables import SECTIONS, ExportQuery, page_tables
from .dashboards import (
    DEFAULT_DAYS,
    MAX_DAYS,
    NO_SOURCE,
    Dashboard,
    DateRange,
    Filters,
    dashboard_for,
)
from .manager_selectors import manager_scope, scope_membership_get

DASHBOARD_ROLES = (Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS)
WEEKLY_FROM_DAYS = 62  # longer periods are drawn week by week unless asked otherwise
PRESETS = [(7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days")]
REJECTION_SERIES = 5  # reasons drawn separately per rep; the rest are stacked as "Other"
EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


class DashboardFilterForm(forms.Form):
    """The period (whole days in the tenant's time zone, at most a year) and the optional rep and
    source (GET). Only the reps the viewer may see and the sources the tenant's leads carry are valid."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(required=False, label="Group by",
                           choices=[("", "Automatic"), ("day", "Day"), ("week", "Week")])
    rep = forms.TypedChoiceField(required=False, label="Rep", coerce=int, empty_value=None, error_messages={
        "invalid_choice": "Pick a rep from the list: %(value)s is not one of the reps you can see."})
    source = forms.ChoiceField(required=False, label="Source", error_messages={
        "invalid_choice": "Pick a source from the list: no lead of this workspace has the source %(value)s."})

    def __init__(self, *args, today: dt.date, people: list[tuple[int, str]] = (), sources: list[str] = (),
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["rep"].choices = [("", "All reps"), *[(str(user_id), name) for user_id, name in people]]
        self.fields["source"].choices = [("", "All sources"), *[(s or NO_SOURCE, s or NO_SOURCE) for s in sources]]

    def _date_in_range(self, name: str):
        """A date the period arithmetic (the days before `start`, the day after `end`, the tenant's time
        zone) can use: year 1 or 9999 overflows Python's calendar."""
        value = self.cleaned_data.get(name)
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise forms.ValidationError(f"Pick a date between {EARLIEST_DATE:%b %-d, %Y} and {LATEST_DATE:%b %-d, %Y}.")
        return value

    def clean_start(self):
        return self._date_in_range("start")

    def clean_end(self):
        return self._date_in_range("end")

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

    def filters(self) -> Filters:
        source = self.cleaned_data.get("source") or None
        return Filters(owner_id=self.cleaned_data.get("rep"), source="" if source == NO_SOURCE else source)


class DashboardRequest:
    """What the page and the exports share: the viewer's reach, the validated filters and period."""

    def __init__(self, request):
        membership = getattr(request, "membership", None)
        if request.tenant is None or membership is None or membership.role not in DASHBOARD_ROLES:
            raise PermissionDenied("Dashboards are for managers, admins and marketing ops.")
        self.tenant = request.tenant
        self.role = membership.role
        self.tz = request.tenant.timezone or "UTC"
        try:
            self.today = timezone.now().astimezone(zoneinfo.ZoneInfo(self.tz)).date()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.tz, self.today = "UTC", timezone.now().date()
        self.reach: Reach = dashboard_reach(tenant=self.tenant, membership=membership)
        choices = {"today": self.today, "people": self.reach.people, "sources": lead_sources(tenant=self.tenant)}
        form = DashboardFilterForm(request.GET or None, **choices)
        self.valid = not form.is_bound or form.is_valid()
        if form.is_bound and self.valid:
            self.period, self.filters = form.period(tz=self.tz), form.filters()
        else:
            self.period, self.filters = DateRange.default(tz=self.tz, today=self.today), Filters()
            if not form.is_bound:
                form = DashboardFilterForm(initial={"start": self.period.start, "end": self.period.end}, **choices)
        self.form = form

    def query_string(self, *, start: dt.date | None = None, end: dt.date | None = None, by: str | None = "") -> str:
        """The period and filters in force (for the export links: the same figures as the page), or
        another period with the same filters (the quick periods; `by=None` lets the length decide)."""
        params = {"start": (start or self.period.start).isoformat(), "end": (end or self.period.end).isoformat()}
        if by is not None:
            params["by"] = by or self.period.unit
        if self.filters.owner_id is not None:
            params["rep"] = self.filters.owner_id
        if self.filters.source is not None:
            params["source"] = self.filters.source or NO_SOURCE
        return urlencode(params)

    def errors_text(self) -> str:
        return "\n".join(f"{self.form.fields[name].label if name in self.form.fields else name}: {message}"
                         for name, messages in self.form.errors.items() for message in messages)


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


def _breakdown_charts(more: Breakdowns) -> dict:
    """Median response per rep and per source, captured → SQL per source, reasons stacked per rep."""
    def medians(rows, what, width=440):
        contacted = [r for r in rows if r.median_seconds is not None]
        return charts.bar_chart(
            title=f"Median response time by {what}",
            desc="; ".join(f"{r.label}: {charts.format_duration(r.median_seconds)} median, "
                           f"{charts.format_duration(r.p90_seconds)} p90 over {r.contacted} contacted"
                           for r in contacted),
            labels=[r.label for r in contacted], values=[r.median_seconds for r in contacted],
            value_format=charts.format_duration, color=charts.PALETTE[0], width=width,
            empty_message=f"No lead created in this period has been contacted yet, so there is no response "
                          f"time by {what}. The first call, email or meeting a rep logs stops the clock.")

    totals: dict[str, int] = {}
    for r in more.rejections_by_rep:
        totals[r.label] = totals.get(r.label, 0) + r.total
    ranked = sorted(totals, key=lambda label: (-totals[label], label))
    shown = ranked if len(ranked) <= REJECTION_SERIES else ranked[:REJECTION_SERIES - 1]
    reps = list(dict.fromkeys(r.rep for r in more.rejections_by_rep))
    series = {label: [0] * len(reps) for label in shown + (["Other"] if len(ranked) > len(shown) else [])}
    for r in more.rejections_by_rep:
        series[r.label if r.label in shown else "Other"][reps.index(r.rep)] += r.total
    return {
        "reps": medians(more.reps, "rep", width=1000),  # a full-width card
        "response": medians(more.sources, "source"),
        "funnel_by_source": charts.bar_chart(
            title="Captured → SQL by source",
            desc="; ".join(f"{r.label}: {_pct(r.sql_rate)} of {r.leads} reached SQL" for r in more.sources),
            labels=[r.label for r in more.sources], values=[r.sql_rate or 0 for r in more.sources],
            value_format=_pct, color=charts.PALETTE[3],
            empty_message="No lead captured in this period has reached SQL yet; the table below shows how far "
                          "each source's leads got."),
        "rejections_by_rep": charts.stacked_bars(
            title="Rejection and disqualification reasons by rep",
            desc="; ".join(f"{r.rep}: {r.label} {r.total}" for r in more.rejections_by_rep),
            categories=reps, series=series, width=720, height=300,
            empty_message="No lead with an owner was rejected or disqualified in this period."),
    }


@require_GET
@login_required
def dashboard(request):
    """Managers, admins and marketing ops; reps (SDRs, AEs) are sent to their own numbers (`dashboard-me`),
    anyone else gets the 403 page. Invalid filters answer 400 with the messages beside their fields and
    the default period's figures."""
    membership = getattr(request, "membership", None)
    if membership is not None and membership.role in REP_ROLES:
        query = request.META.get("QUERY_STRING", "")
        return redirect(reverse("dashboard-me") + (f"?{query}" if query else ""))
    view = DashboardRequest(request)
    data = dashboard_for(tenant=view.tenant, period=view.period, filters=view.filters)
    more = breakdowns_for(tenant=view.tenant, period=view.period, filters=view.filters,
                          owner_ids=view.reach.owner_ids)
    role = membership.role if membership is not None else None
    roi = source_roi(tenant=view.tenant, period=view.period, filters=view.filters) if may(role, COSTS_VIEW) else None
    presets = [{"label": label, "query": view.query_string(start=view.today - dt.timedelta(days=days - 1),
                                                          end=view.today, by=None),
                "active": view.period.end == view.today and (view.period.end - view.period.start).days + 1 == days}
               for days, label in PRESETS]
    people = dict(view.reach.people)
    return render(request, "workspace/dashboard.html", {
        "form": view.form, "period": view.period, "data": data, "more": more, "cards": _cards(data),
        "charts": _charts(data) | _breakdown_charts(more), "tables": page_tables(data, more, roi), "presets": presets,
        "roi": roi, "costs_editable": may(role, COSTS_EDIT), "plan_visible": may(role, PLAN_VIEW),
        "export_query": view.query_string(),
        "reps_heading": "Reps" if view.reach.owner_ids is None else "Your teams' reps",
        "reps_note": "Leads each owner got that were created in this period (response time, outcomes) and the "
                     "first-contact SLA clocks started for them in it."
                     + ("" if view.reach.owner_ids is None else " Only the reps of the teams you manage or belong to."),
        "filter_rep": people.get(view.filters.owner_id) if view.filters.owner_id is not None else None,
        "filter_source": None if view.filters.source is None else (view.filters.source or NO_SOURCE),
        "response": {"median": charts.format_duration(data.response.median_seconds),
                     "p90": charts.format_duration(data.response.p90_seconds)},
    }, status=200 if view.valid else 400)


@require_GET
@login_required
def dashboard_export(request, section: str):
    """One section as CSV for the same period and filters as the page: 404 for an unknown section,
    400 (the messages as text) for invalid filters."""
    view = DashboardRequest(request)
    build = SECTIONS.get(section)
    if build is None:
        raise Http404("No such dashboard section.")
    if section == "roi" and not may(view.role, COSTS_VIEW):
        raise PermissionDenied("The Source ROI is for managers, admins and marketing ops.")
    if not view.valid:
        return HttpResponse("The export was not made:\n" + view.errors_text() + "\n", status=400,
                            content_type="text/plain; charset=utf-8")
    table = build(ExportQuery(tenant=view.tenant, period=view.period, filters=view.filters,
                              owner_ids=view.reach.owner_ids))
    response = HttpResponse("\ufeff" + table.csv_text(), content_type="text/csv; charset=utf-8")
    name = f"{view.tenant.slug}-{section}-{view.period.start:%Y-%m-%d}-to-{view.period.end:%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- a rep's own numbers ------------------------------------------------------------------------------------


class PeriodForm(DashboardFilterForm):
    """The dashboards' period fields alone (a rep's page has no rep or source filter)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("by", "rep", "source"):
            del self.fields[name]


def _rep_page(request, membership, *, own: bool):
    tenant = request.tenant
    tz = tenant.timezone or "UTC"
    try:
        today = timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz, today = "UTC", timezone.now().date()
    form = PeriodForm(request.GET or None, today=today)
    valid = not form.is_bound or form.is_valid()
    period = form.period(tz=tz) if form.is_bound and valid else DateRange.default(tz=tz, today=today)
    if not form.is_bound:
        form = PeriodForm(initial={"start": period.start, "end": period.end}, today=today)
    numbers = rep_numbers(tenant=tenant, membership=membership, period=period)
    presets = [{"label": label, "query": urlencode({"start": (today - dt.timedelta(days=days - 1)).isoformat(),
                                                    "end": today.isoformat()}),
                "active": period.end == today and (period.end - period.start).days + 1 == days}
               for days, label in PRESETS]
    return render(request, "workspace/dashboard_me.html", {
        "numbers": numbers, "form": form, "period": period, "presets": presets, "own": own, "rep": membership,
        "action": request.path,
    }, status=200 if valid else 400)


@require_GET
@login_required
def dashboard_me(request):
    """The signed-in member's own numbers for a period (any role; reps land here from /dashboard/)."""
    membership = getattr(request, "membership", None)
    if getattr(request, "tenant", None) is None or membership is None:
        raise PermissionDenied("Choose a workspace to see your numbers.")
    return _rep_page(request, membership, own=True)


@require_GET
@login_required
def dashboard_rep(request, membership_id: int):
    """A manager's (or admin's) view of one rep of their teams: the same page as the rep's own. Another team's
    or tenant's rep is a 404; anyone but managers and admins gets 403."""
    scope = manager_scope(tenant=getattr(request, "tenant", None), membership=getattr(request, "membership", None))
    return _rep_page(request, scope_membership_get(scope=scope, membership_id=membership_id), own=False)
