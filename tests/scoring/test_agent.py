"""The Scoring Agent: re-scores on signals, captures and edits; idempotent, concurrency-safe, audited, switchable."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, AgentSetting
from leads.models import Lead, Signal, StageTransition
from leads.services.lead_edit import lead_update
from leads.services.signals import signals_process
from leads.tasks import signals_process_task
from scoring.events import lead_band_changed, lead_became_hot
from scoring.models import ScoreChange, ScoreEvent
from scoring.services import leads_score
from tests.support.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def add_signal(tenant, lead, type_, *, external_id="", minutes_ago=1):
    return Signal.objects.unscoped().create(tenant=tenant, lead=lead, type=type_, external_id=external_id,
                                            occurred_at=timezone.now() - timedelta(minutes=minutes_ago))


def fresh(lead):
    return Lead.objects.unscoped().get(pk=lead.pk)


def test_a_signal_rescores_its_lead_and_is_audited_under_the_agents_name(tenant, model):
    lead = LeadFactory(tenant=tenant, last_activity_at=timezone.now())
    signal = add_signal(tenant, lead, "pricing_page_view")
    signals_process_task.delay(tenant_id=tenant.pk, signal_ids=[signal.pk])
    lead = fresh(lead)
    assert (lead.score, lead.band) == (20, "cold")
    change = ScoreChange.objects.unscoped().get(lead=lead)
    assert (change.old_score, change.new_score, change.cause) == (None, 20, "signal")
    event = AuditEvent.objects.unscoped().get(action="lead.scored", object_id=str(lead.pk))
    assert event.actor_name == "Scoring Agent" and event.actor_kind == "agent"
    assert event.changes["score"] == [None, 20] and event.metadata["cause"] == "signal"


def test_the_same_signal_processed_twice_counts_once(tenant, model):
    lead = LeadFactory(tenant=tenant, last_activity_at=timezone.now())
    signal = add_signal(tenant, lead, "demo_request", external_id="evt-1")
    for _ in range(2):
        signals_process_task.delay(tenant_id=tenant.pk, signal_ids=[signal.pk])
        leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal")
    assert fresh(lead).score == 30
    assert ScoreChange.objects.unscoped().filter(lead=lead).count() == 1


def test_crossing_a_band_emits_one_event_and_moves_raw_leads_to_mql_but_no_further(
        tenant, model, django_capture_on_commit_callbacks):
    received = []
    lead_band_changed.connect(lambda **kw: received.append(("band", kw["from_band"], kw["to_band"])), weak=False,
                              dispatch_uid="t1")
    lead_became_hot.connect(lambda **kw: received.append(("hot", kw["band"], kw["score"])), weak=False,
                            dispatch_uid="t2")
    try:
        lead = LeadFactory(tenant=tenant, job_title="CEO", company_size=600, last_activity_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            leads_score(tenant=tenant, lead_ids=[lead.pk], cause="capture")  # 45 -> mql
        assert (fresh(lead).band, fresh(lead).stage) == ("mql", "mql")
        for i in range(3):
            add_signal(tenant, lead, "demo_request", external_id=f"d{i}")
        with django_capture_on_commit_callbacks(execute=True):
            leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal")  # 45 + 90 -> 100, sql band
        with django_capture_on_commit_callbacks(execute=True):
            leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal")  # nothing new
        lead = fresh(lead)
        assert (lead.score, lead.band, lead.stage, lead.is_hot) == (100, "sql", "mql", True)
    finally:
        lead_band_changed.disconnect(dispatch_uid="t1")
        lead_became_hot.disconnect(dispatch_uid="t2")
    assert received == [("band", "", "mql"), ("band", "mql", "sql"), ("hot", "sql", 100)]
    assert ScoreEvent.objects.unscoped().filter(dispatched_at__isnull=True).count() == 0
    transitions = list(StageTransition.objects.unscoped().filter(lead=lead).values_list("from_stage", "to_stage"))
    assert transitions == [("raw", "mql")]


def test_a_lead_a_human_moved_further_is_never_moved_back(tenant, model):
    lead = LeadFactory(tenant=tenant, stage="sal", job_title="CEO", company_size=600)
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="capture")
    assert fresh(lead).stage == "sal"


def test_editing_a_scoring_field_rescores_the_lead(tenant, model, django_capture_on_commit_callbacks):
    lead = LeadFactory(tenant=tenant, job_title="", last_activity_at=timezone.now())
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="capture")
    editor = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        lead_update(lead=lead, data={"job_title": "Chief Financial Officer"}, actor=Actor.for_user(editor))
    assert fresh(lead).score == 25
    assert ScoreChange.objects.unscoped().filter(lead=lead, cause="field_edit").count() == 1


def test_a_captured_lead_is_scored_by_the_agent(tenant, model, lead_form, client,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/intake/", {"email": "cto@bigco.example", "job_title": "CTO",
                                                   "company_size": "1,200"},
                               content_type="application/json", HTTP_X_FORM_KEY=lead_form.key)
    assert response.status_code == 201
    lead = Lead.objects.unscoped().get(email="cto@bigco.example")
    assert (lead.score, lead.fit_score, lead.band) == (45, 45, "mql")


def test_the_off_switch_stops_the_agent(tenant, model):
    AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.SCORING, enabled=False)
    lead = LeadFactory(tenant=tenant)
    signal = add_signal(tenant, lead, "demo_request")
    signals_process(tenant=tenant, signal_ids=[signal.pk])
    assert fresh(lead).score is None
    assert not AuditEvent.objects.unscoped().filter(action="lead.scored").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_signals_on_one_lead_never_lose_an_update(tenant, model):
    lead = LeadFactory(tenant=tenant, last_activity_at=timezone.now())
    signals = [add_signal(tenant, lead, "email_click", external_id=f"c{i}") for i in range(8)]
    barrier = threading.Barrier(len(signals))
    errors = []

    def work(signal):
        try:
            barrier.wait()
            with tenant_scope(tenant):  # as the signal task runs it (a new thread has no tenant)
                signals_process(tenant=tenant, signal_ids=[signal.pk])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(s,)) for s in signals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fresh(lead).score == 8 * 5
    assert list(ScoreChange.objects.unscoped().filter(lead=lead).order_by("at", "id")
                .values_list("new_score", flat=True))[-1] == 40


def test_caps_and_once_per_period_limit_signal_points(tenant, model):
    from scoring.models import Category, Operator, ScoringRule

    ScoringRule.objects.unscoped().filter(model=model, signal_type="pricing_page_view").update(cap=25)
    ScoringRule.objects.unscoped().create(
        tenant=tenant, model=model, position=999, name="Web: weekly visitor", category=Category.BEHAVIORAL,
        operator=Operator.SIGNAL, signal_type="page_view", points=4, once_per_days=7)
    # Mid-period on purpose: periods are counted from the epoch, so the views below share one.
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    lead = LeadFactory(tenant=tenant, last_activity_at=now)
    for minutes in (1, 2, 1441):
        Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="pricing_page_view",
                                         occurred_at=now - timedelta(minutes=minutes))
    # Page views: three within one 7-day period count once, one a month earlier counts again.
    for minutes in (1, 60, 120, 30 * 1440):
        Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="page_view",
                                         occurred_at=now - timedelta(minutes=minutes))
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal", now=now)
    lead = fresh(lead)
    assert lead.score_breakdown == {
        ScoringRule.objects.unscoped().get(model=model, signal_type="pricing_page_view").key: 25,
        ScoringRule.objects.unscoped().get(model=model, signal_type="page_view").key: 8,
    }
    assert lead.score == 33
