"""A rep's own numbers (`/dashboard/me/`, and a manager's view of one rep): response time, first-contact SLA,
leads owned and worked, and outcomes over a period, with the dashboards' credit rules (`dashboard_credit`)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from leadmgmt.tenancy.models import Membership

from . import charts
from .dashboard_breakdowns import BreakdownRow, RepRejection, rejections_by_rep, rep_breakdown
from .dashboards import DateRange, Filters, SlaCompliance, sla_compliance


@dataclass
class RepNumbers:
    """One rep's figures for the leads created in a period."""

    membership: Membership
    period: DateRange
    row: BreakdownRow
    rejections: list[RepRejection] = field(default_factory=list)
    sla: dict[str, SlaCompliance] = field(default_factory=dict)

    @property
    def first_contact(self) -> SlaCompliance | None:
        return self.sla.get("first_contact")

    @property
    def acceptance(self) -> SlaCompliance | None:
        return self.sla.get("acceptance")

    def cards(self) -> list[dict]:
        """The page's key numbers, each with the sentence that explains it."""
        row, first, accept = self.row, self.first_contact, self.acceptance
        cards = [
            {"key": "median", "label": "Median response", "value": charts.format_duration(row.median_seconds),
             "note": f"p90 {charts.format_duration(row.p90_seconds)} · {row.contacted} first contact"
                     f"{'' if row.contacted == 1 else 's'} made"},
            {"key": "sla", "label": "First-contact SLA met", "value": _pct(first.rate if first else None),
             "note": f"{first.met} met, {first.breached} breached, {first.running} running" if first
             else "No first-contact SLA clock of yours started in this period"},
            {"key": "owned", "label": "Leads owned", "value": str(row.leads),
             "note": "Assigned to you at some point, even if they moved on"},
            {"key": "worked", "label": "Leads worked", "value": str(row.worked),
             "note": "With a call, email, meeting or note you logged"},
        ]
        if accept is not None:
            cards.append({"key": "acceptance", "label": "Acceptance SLA met", "value": _pct(accept.rate),
                          "note": f"{accept.met} met, {accept.breached} breached, {accept.running} running"})
        return cards

    def outcomes(self) -> list[tuple[str, int, str]]:
        row = self.row
        return [
            ("Accepted", row.accepted, "Leads you accepted"),
            ("Qualified", row.qualified, "Leads you qualified into an opportunity (SQL handoff or conversion)"),
            ("Converted", row.converted, "Leads you converted"),
            ("Rejected", row.rejected, "Leads you rejected back to marketing"),
            ("Disqualified", row.disqualified, "Leads you worked and disqualified"),
        ]


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def _empty_row(membership: Membership) -> BreakdownRow:
    return BreakdownRow(key=str(membership.user_id), label=membership.user.get_username(), leads=0, contacted=0,
                        median_seconds=None, p90_seconds=None, sla_met=0, sla_breached=0, sla_running=0,
                        reached=[0, 0, 0, 0, 0], converted=0, rejected=0, disqualified=0)


def rep_numbers(*, tenant, membership: Membership, period: DateRange, now: dt.datetime | None = None) -> RepNumbers:
    """The figures of one member of `tenant` for the leads created in `period`: three queries."""
    me = frozenset({membership.user_id})
    rows = rep_breakdown(tenant=tenant, period=period, owner_ids=me, now=now)
    return RepNumbers(
        membership=membership, period=period, row=rows[0] if rows else _empty_row(membership),
        rejections=rejections_by_rep(tenant=tenant, period=period, owner_ids=me),
        sla=sla_compliance(tenant=tenant, period=period, now=now, filters=Filters(owner_id=membership.user_id)),
    )
