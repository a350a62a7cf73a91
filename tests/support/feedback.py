"""A small hand-built history for the feedback-loop report: MQLs handed to sales in November 2026 (and one in
October) with their scores at handoff, accepted, rejected, disqualified (by a rep and by the outcome sync), routed by
named rules and scored by known rules, and deals won in several currencies. The expected figures are in the tests."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Lead, LeadStage, StageTransition
from routing.defaults import routing_defaults_create
from routing.models import Assignment, Trigger
from scoring.models import ModelStatus, ScoreCause, ScoreChange, ScoringModel, ScoringRule
from scoring.services import scoring_default_model_create
from tests.support.factories import LeadFactory
from workspace.services.lifecycle import lead_disqualify, lead_reject
from workspace.services.outcomes import OutcomeInput, outcomes_sync

UTC = dt.UTC
START, END = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
INJECTION = "=cmd|' /C calc'!A0"


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


def _lead(tenant, *, created: dt.datetime, score: int | None = None, band: str = "", **fields) -> Lead:
    return LeadFactory(tenant=tenant, created_at=created, score=score, band=band, **fields)


def _mql(lead: Lead, *, when: dt.datetime, score: int, band: str) -> None:
    """The lead became an MQL at `when` with `score` (its score change and its raw → MQL stage move)."""
    ScoreChange.objects.unscoped().create(tenant_id=lead.tenant_id, lead=lead, at=when, old_score=None,
                                          new_score=score, old_band="", new_band=band, cause=ScoreCause.values[0])
    StageTransition.objects.unscoped().create(tenant_id=lead.tenant_id, lead=lead, from_stage="raw", to_stage="mql",
                                              at=when, actor_name="Scoring")
    Lead.objects.unscoped().filter(pk=lead.pk).update(stage=LeadStage.MQL)


def _accepted(lead: Lead, when: dt.datetime) -> None:
    Lead.objects.unscoped().filter(pk=lead.pk).update(accepted_at=when, stage=LeadStage.SAL)


def _routed(lead: Lead, rule_name: str, when: dt.datetime) -> None:
    Assignment.objects.unscoped().create(tenant_id=lead.tenant_id, lead=lead, rule_name=rule_name,
                                         trigger=Trigger.CAPTURE, actor_kind="agent", actor_name="Routing", at=when)


def _audited_at(lead: Lead, when: dt.datetime) -> None:
    """The reject/disqualify happened at `when` (the audit trail records the wall clock)."""
    AuditEvent.objects.unscoped().filter(object_id=str(lead.pk), action__in=["lead.rejected", "lead.disqualified"]
                                         ).update(at=when)


def feedback_history(tenant, *, prefix: str = "") -> dict:
    """The history; returns the leads by name and the scoring rules used (A, B negative, C)."""
    model = ScoringModel.objects.unscoped().filter(tenant=tenant, status=ModelStatus.PUBLISHED).first()
    if model is None:  # a bare test tenant (a provisioned one has both)
        routing_defaults_create(tenant=tenant, actor=SYSTEM)
        model = scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    rules = list(ScoringRule.objects.unscoped().filter(model=model).order_by("position", "id")[:3])
    ra, rb, rc = rules
    leads: dict[str, Lead] = {}
    specs = [  # name, source, campaign, industry, title, created, score now, mql day, score at mql, band at mql
        ("L1", "web", "", "Software", "VP Sales", at(11, 1), 90, 2, 90, "sql"),
        ("L2", "web", "", "Healthcare", "vp sales ", at(11, 2), 80, 3, 80, "sal"),
        ("L3", "web", "spring-promo", "Retail", "Analyst", at(11, 2), 30, 3, 70, "sal"),
        ("L4", "ads", "", "Software", "CTO", at(11, 3), 60, 4, 60, "mql"),
        ("L5", "ads", INJECTION, "Retail", "Intern", at(11, 3), 50, 4, 50, "mql"),
        ("L6", "ads", "spring-promo", "Retail", "Student", at(11, 4), 45, 5, 45, "mql"),
        ("L7", "web", "", "Software", "Manager", at(11, 5), 42, 6, 42, "mql"),
        ("L8", "web", "", "Software", "CEO", at(10, 1), 95, 2, 95, "sql"),  # October: history only
    ]
    for name, source, campaign, industry, title, created, score, mql_day, mql_score, band in specs:
        lead = _lead(tenant, created=created, score=score, band=band, source=source, utm_campaign=campaign,
                     industry=industry, job_title=title, email=f"{prefix}{name.lower()}@buyer.example")
        _mql(lead, when=created.replace(day=mql_day) if name != "L8" else at(10, 15), score=mql_score, band=band)
        leads[name] = lead
    leads["L9"] = _lead(tenant, created=at(11, 6), score=20, band="cold", source="web",
                        email=f"{prefix}l9@buyer.example")
    leads["L10"] = _lead(tenant, created=at(11, 7), source="event", email=f"{prefix}l10@buyer.example")
    leads["L11"] = _lead(tenant, created=at(10, 2), source="web", email=f"{prefix}l11@buyer.example")
    leads["L12"] = _lead(tenant, created=dt.datetime(2026, 10, 1, tzinfo=UTC), source="web", industry="", job_title="",
                         email=f"{prefix}l12@buyer.example")
    for name in ("L1", "L2", "L4"):
        _accepted(leads[name], at(11, 8))
    _accepted(leads["L8"], at(10, 16))
    # L3's score fell after its rejection: the report names its band when rejected (sal), not now (warm).
    ScoreChange.objects.unscoped().create(tenant_id=tenant.pk, lead=leads["L3"], at=at(11, 20), old_score=70,
                                          new_score=30, old_band="sal", new_band="warm", cause=ScoreCause.values[0])
    Lead.objects.unscoped().filter(pk=leads["L3"].pk).update(band="warm")
    _routed(leads["L3"], "Web round robin", at(11, 3))
    for name in ("L5", "L6"):
        _routed(leads[name], "Ads territory", at(11, 4))
    _routed(leads["L5"], "", at(11, 5))  # a later assignment without a rule: the rule that fired stays
    breakdowns = {"L3": {ra.key: 20, rb.key: -10}, "L5": {ra.key: 10}, "L6": {ra.key: 5, rc.key: 15}}
    for name, breakdown in breakdowns.items():
        Lead.objects.unscoped().filter(pk=leads[name].pk).update(scoring_model=model, score_breakdown=breakdown)
    with tenant_scope(tenant):
        for name, code, when, verb in (("L3", "not_icp", at(11, 10), lead_reject),
                                       ("L5", "no_budget", at(11, 12), lead_reject),
                                       ("L6", "not_icp", at(11, 14), lead_disqualify),
                                       ("L11", "spam", at(10, 20), lead_reject)):
            verb(lead=Lead.objects.get(pk=leads[name].pk), actor=SYSTEM, reason_code=code, now=when)
            _audited_at(leads[name], when)
        outcomes_sync(tenant=tenant, actor=SYSTEM, now=at(12, 1), items=[
            OutcomeInput(index=0, result="disqualified", lead_id=leads["L10"].pk, closed_at=at(11, 20),
                         reason="Student project"),
            OutcomeInput(index=1, result="won", lead_id=leads["L1"].pk, amount=Decimal("10000"), currency="EUR",
                         closed_at=at(11, 21)),
            OutcomeInput(index=2, result="won", lead_id=leads["L2"].pk, amount=Decimal("5000"), currency="USD",
                         closed_at=at(11, 12, 12)),
            OutcomeInput(index=3, result="won", lead_id=leads["L4"].pk, amount=Decimal("3000"), currency="EUR",
                         closed_at=at(11, 28, 12)),
            OutcomeInput(index=4, result="won", lead_id=leads["L12"].pk, closed_at=dt.datetime(2026, 11, 30, tzinfo=UTC)),
            OutcomeInput(index=5, result="won", lead_id=leads["L8"].pk, amount=Decimal("999"), currency="EUR",
                         closed_at=at(10, 30)),
        ])
    return {"leads": leads, "rules": (ra, rb, rc), "model": model}
