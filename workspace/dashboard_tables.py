"""The figures behind every dashboard chart as tables: shown under each chart ("Show data") and
exported as CSV, from one definition so the page and the download never disagree.

A `Table` holds raw values (counts, seconds, ratios, dates); `display_rows()` formats them for the
page ("3.5 h", "40%", "—") and `csv_text()` writes them for spreadsheets (whole seconds, percent
with one decimal, ISO dates, empty for none). Text cells that a spreadsheet would run as a formula
(starting with = + - @, a tab or a carriage return) are prefixed with an apostrophe (OWASP's
CSV-injection advice): sources, names and reason labels come from forms and admins.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import charts
from .dashboard_breakdowns import (
    BreakdownRow,
    Breakdowns,
    RepRejection,
    rejections_by_rep,
    rep_breakdown,
    source_breakdown,
)
from .dashboard_roi import RoiRow, SourceRoi, source_roi
from .dashboards import (
    AgingBucket,
    Dashboard,
    DateRange,
    Filters,
    FunnelStep,
    RejectionCount,
    ResponseTime,
    SlaCompliance,
    StageVelocity,
    VolumeBySource,
    lead_aging,
    lead_volume_by_source,
    rejection_reasons,
    response_time,
    sla_compliance,
    stage_funnel,
    stage_velocity,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SLA_KIND_LABELS = {"first_contact": "First contact", "acceptance": "Acceptance"}


def csv_safe(text: str) -> str:
    """Text a spreadsheet shows as text, never runs: a leading formula character gets an apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class Column:
    """A column and how its values read: text, count, seconds (a duration), ratio (0..1), money or date."""

    label: str
    kind: str = "count"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"

    @property
    def csv_label(self) -> str:
        return {"seconds": f"{self.label} (seconds)", "ratio": f"{self.label} (%)"}.get(self.kind, self.label)

    def display(self, value) -> str:
        if isinstance(value, str):
            return value
        if self.kind == "seconds":
            return charts.format_duration(value)
        if self.kind == "ratio":
            return _pct(value)
        if self.kind == "date":
            return f"{value.day} {value:%b %Y}"
        if self.kind == "money":
            return "—" if value is None else f"{value:,.2f}"
        return "—" if value is None else charts.format_number(value)

    def csv(self, value) -> str | int:
        if isinstance(value, str):
            return csv_safe(value)
        if value is None:
            return ""
        if self.kind == "seconds":
            return math.floor(float(value) + 0.5)
        if self.kind == "ratio":
            return f"{value * 100:.1f}"
        if self.kind == "date":
            return value.isoformat()
        if self.kind == "money":
            return f"{value:.2f}"
        return value


@dataclass
class Table:
    """One section's figures: the first column names the row (a row header on the page)."""

    section: str  # the export's name: /dashboard/export/<section>.csv
    caption: str
    columns: list[Column]
    rows: list[list]
    total: list | None = None  # a footer row ("Total", "All sources")
    empty: str = "No figures for this period."

    def display_rows(self) -> list[list[str]]:
        return [[column.display(v) for column, v in zip(self.columns, row, strict=True)] for row in self.rows]

    def display_total(self) -> list[str] | None:
        if self.total is None:
            return None
        return [column.display(v) for column, v in zip(self.columns, self.total, strict=True)]

    def cells(self) -> list[list[tuple[str, bool]]]:
        """Each row's (text, numeric) cells, for the page's table."""
        return [[(column.display(v), column.numeric) for column, v in zip(self.columns, row, strict=True)]
                for row in self.rows]

    def total_cells(self) -> list[tuple[str, bool]]:
        if self.total is None:
            return []
        return [(column.display(v), column.numeric) for column, v in zip(self.columns, self.total, strict=True)]

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, quotes doubled, minimal quoting
        writer.writerow([csv_safe(column.csv_label) for column in self.columns])
        for row in [*self.rows, *([self.total] if self.total is not None else [])]:
            writer.writerow([column.csv(v) for column, v in zip(self.columns, row, strict=True)])
        return buffer.getvalue()


# --- one builder per section, from the selectors' results --------------------------------------------------


def volume_table(volume: VolumeBySource, unit: str) -> Table:
    totals = volume.totals()
    return Table(
        section="volume", caption="Leads captured per " + unit + " and source",
        columns=[Column("Week starting" if unit == "week" else "Day", "date"),
                 *[Column(source) for source in volume.sources], Column("Total")],
        rows=[[day, *[volume.counts[s][i] for s in volume.sources], sum(volume.counts[s][i] for s in volume.sources)]
              for i, day in enumerate(volume.buckets)] if volume.total else [],
        total=["Total", *[totals[s] for s in volume.sources], volume.total] if volume.total else None,
        empty="No leads were captured in this period.")


def sla_table(sla: dict[str, SlaCompliance]) -> Table:
    return Table(
        section="sla", caption="SLA clocks started in this period",
        columns=[Column("SLA", "text"), Column("Met"), Column("Breached"), Column("Running"),
                 Column("Compliance", "ratio")],
        rows=[[SLA_KIND_LABELS.get(kind, kind), row.met, row.breached, row.running, row.rate]
              for kind, row in sla.items()],
        empty="No SLA clock started in this period.")


_RESPONSE_COLUMNS = [Column("Leads"), Column("Contacted"), Column("Median response", "seconds"),
                     Column("p90 response", "seconds"), Column("SLA met"), Column("SLA breached"),
                     Column("SLA running"), Column("SLA compliance", "ratio")]


def _response_cells(row: BreakdownRow) -> list:
    return [row.leads, row.contacted, row.median_seconds, row.p90_seconds, row.sla_met, row.sla_breached,
            row.sla_running, row.sla_rate]


def response_table(rows: Sequence[BreakdownRow], overall: ResponseTime, first: SlaCompliance | None) -> Table:
    total = None
    if rows:
        total = ["All sources", overall.leads, overall.contacted, overall.median_seconds, overall.p90_seconds,
                 *((first.met, first.breached, first.running, first.rate) if first else (0, 0, 0, None))]
    return Table(
        section="response", caption="Response time (created → first contact) and first-contact SLA by source",
        columns=[Column("Source", "text"), *_RESPONSE_COLUMNS],
        rows=[[row.label, *_response_cells(row)] for row in rows], total=total,
        empty="No leads were captured in this period.")


def reps_table(rows: Sequence[BreakdownRow]) -> Table:
    return Table(
        section="reps", caption="Per rep: leads they own that were created in this period, and their SLA clocks",
        columns=[Column("Rep", "text"), *_RESPONSE_COLUMNS, Column("Reached SQL"), Column("Converted"),
                 Column("Rejected"), Column("Disqualified")],
        rows=[[row.label, *_response_cells(row), row.reached[3], row.converted, row.rejected, row.disqualified]
              for row in rows],
        empty="No lead created in this period has an owner yet.")


def funnel_table(steps: Sequence[FunnelStep]) -> Table:
    return Table(
        section="funnel", caption="How far the leads created in this period got",
        columns=[Column("Stage", "text"), Column("Leads"), Column("Of the stage before", "ratio"),
                 Column("Of captured", "ratio")],
        rows=[[s.label, s.count, s.from_previous, s.from_start] for s in steps] if steps and steps[0].count else [],
        empty="No leads were captured in this period.")


def funnel_by_source_table(rows: Sequence[BreakdownRow], steps: Sequence[FunnelStep]) -> Table:
    return Table(
        section="funnel-by-source", caption="Funnel by source: leads that reached each stage",
        columns=[Column("Source", "text"), *[Column(s.label) for s in steps], Column("Captured → SQL", "ratio")],
        rows=[[row.label, *row.reached, row.sql_rate] for row in rows],
        total=["All sources", *[s.count for s in steps], steps[3].from_start] if rows else None,
        empty="No leads were captured in this period.")


def velocity_table(velocity: Sequence[StageVelocity]) -> Table:
    return Table(
        section="velocity", caption="Median time before each kind of stage move made in this period",
        columns=[Column("Stage move", "text"), Column("Moves"), Column("Median time", "seconds")],
        rows=[[v.label, v.moves, v.median_seconds] for v in velocity],
        empty="No lead changed stage in this period.")


def aging_table(aging: Sequence[AgingBucket]) -> Table:
    return Table(
        section="aging", caption="Open leads by days untouched (now)",
        columns=[Column("Untouched for", "text"), Column("Open leads"), Column("Unassigned")],
        rows=[[b.label, b.leads, b.unassigned] for b in aging] if any(b.leads for b in aging) else [],
        empty="No open leads right now.")


def rejections_table(rejections: Sequence[RejectionCount]) -> Table:
    return Table(
        section="rejections", caption="Rejection and disqualification reasons",
        columns=[Column("Reason", "text"), Column("Code", "text"), Column("Rejected"), Column("Disqualified"),
                 Column("Total")],
        rows=[[r.label, r.code, r.rejected, r.disqualified, r.total] for r in rejections],
        total=["Total", "", sum(r.rejected for r in rejections), sum(r.disqualified for r in rejections),
               sum(r.total for r in rejections)] if rejections else None,
        empty="No lead captured in this period was rejected or disqualified.")


def rejections_by_rep_table(rows: Sequence[RepRejection]) -> Table:
    return Table(
        section="rejections-by-rep", caption="Rejection and disqualification reasons per rep",
        columns=[Column("Rep", "text"), Column("Reason", "text"), Column("Code", "text"), Column("Rejected"),
                 Column("Disqualified"), Column("Total")],
        rows=[[r.rep, r.label, r.code, r.rejected, r.disqualified, r.total] for r in rows],
        empty="No lead with an owner was rejected or disqualified in this period.")


def roi_table(roi: SourceRoi) -> Table:
    money = f" ({roi.currency})" if roi.currency else ""
    columns = [Column("Source", "text"), Column("Campaign", "text"), Column(f"Cost{money}", "money"), Column("Leads"),
               Column("MQLs"), Column("SQLs"), Column("Won"), Column("Cost per lead", "money"),
               Column("Cost per MQL", "money"), Column("Cost per SQL", "money"), Column("Cost per won deal", "money"),
               Column(f"Revenue{money}", "money"), Column("ROI", "ratio")]

    def cells(r: RoiRow) -> list:
        return [r.source, r.campaign, r.cost, r.leads, r.mqls, r.sqls, r.won, r.per_lead, r.per_mql, r.per_sql,
                r.per_won, r.revenue, r.roi]

    return Table(section="roi", caption="Cost and return per source and campaign", columns=columns, rows=[cells(r) for r in roi.rows],
                 total=cells(roi.total) if roi.total is not None and roi.rows else None,
                 empty="No leads were captured and no costs were entered for this period.")


# --- exports: each section runs only the queries it needs ------------------------------------------------


@dataclass(frozen=True)
class ExportQuery:
    tenant: object
    period: DateRange
    filters: Filters
    owner_ids: frozenset[int] | None = None
    now: dt.datetime | None = None

    @property
    def common(self) -> dict:
        return {"tenant": self.tenant, "period": self.period, "filters": self.filters}


SECTIONS: dict[str, Callable[[ExportQuery], Table]] = {
    "volume": lambda q: volume_table(lead_volume_by_source(**q.common), q.period.unit),
    "response": lambda q: response_table(
        source_breakdown(**q.common, now=q.now), response_time(**q.common),
        sla_compliance(**q.common, now=q.now).get("first_contact")),
    "sla": lambda q: sla_table(sla_compliance(**q.common, now=q.now)),
    "funnel": lambda q: funnel_table(stage_funnel(**q.common)),
    "funnel-by-source": lambda q: funnel_by_source_table(source_breakdown(**q.common, now=q.now),
                                                         stage_funnel(**q.common)),
    "velocity": lambda q: velocity_table(stage_velocity(**q.common)),
    "aging": lambda q: aging_table(lead_aging(tenant=q.tenant, filters=q.filters, now=q.now)),
    "rejections": lambda q: rejections_table(rejection_reasons(**q.common)),
    "rejections-by-rep": lambda q: rejections_by_rep_table(rejections_by_rep(**q.common, owner_ids=q.owner_ids)),
    "reps": lambda q: reps_table(rep_breakdown(**q.common, owner_ids=q.owner_ids, now=q.now)),
    "roi": lambda q: roi_table(source_roi(**q.common)),
}


def page_tables(data: Dashboard, more: Breakdowns, roi: SourceRoi | None = None) -> dict[str, Table]:
    """Every section's table for the page (keyed for templates: `_` for `-`), from the figures it
    already fetched: no query here."""
    return {
        "volume": volume_table(data.volume, data.period.unit),
        "sla": sla_table(data.sla),
        "response": response_table(more.sources, data.response, data.sla.get("first_contact")),
        "funnel": funnel_table(data.funnel),
        "funnel_by_source": funnel_by_source_table(more.sources, data.funnel),
        "velocity": velocity_table(data.velocity),
        "aging": aging_table(data.aging),
        "rejections": rejections_table(data.rejections),
        "rejections_by_rep": rejections_by_rep_table(more.rejections_by_rep),
        "reps": reps_table(more.reps),
        **({"roi": roi_table(roi)} if roi is not None else {}),
    }
