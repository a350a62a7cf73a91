"""lead_route: rule order, first match wins, fallback, fall-through, Unassigned with a reason, history
and audit; when routing runs (capture, band change, sweep), the agent switch, dry run, tenant isolation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Agent, AgentSetting, Role
from leads.services.capture import lead_capture
from routing.models import Assignment, RoundRobinSlot, Strategy
from routing.selectors import leads_lost_before_routing
from routing.services.assign import ROUTING_AGENT, lead_route, lead_route_auto
from routing.services.dry_run import route_dry_run
from routing.tasks import lead_route_task, routing_sweep_task
from scoring.events import score_events_dispatch
from scoring.models import ScoreEvent, ScoreEventKind
from scoring.services import scoring_default_model_create
from tests.support.routing import NOW, fresh, lead, rep, rule, team

pytestmark = pytest.mark.django_db
HOT = [{"field": "score", "operator": "range", "value": {"min": 80}}]


def route(tenant, subject=None, **lead_fields):
    return lead_route(lead=subject or lead(tenant, **lead_fields), actor=SYSTEM, trigger="capture", now=NOW)


def test_rules_run_in_position_order_and_the_first_match_wins(tenant):
    a_team, b_team = team(tenant, "A"), team(tenant, "B")
    a, b = rep(tenant, a_team), rep(tenant, b_team)
    rule(tenant, 20, team=b_team, name="Everyone")
    first = rule(tenant, 10, team=a_team, name="Events", conditions=[
        {"field": "source", "operator": "equals", "value": "event"}])
    assignment = route(tenant, source="event")
    assert (assignment.owner_id, assignment.rule_id, assignment.rule_name) == (a.pk, first.pk, "Events")
    other = route(tenant, source="web_form")
    assert other.owner_id == b.pk
    assert other.details["rules"][0] == {
        "position": 10, "name": "Events", "rule_id": first.pk, "strategy": "round_robin", "fallback": False,
        "matched": False, "placed": False, "why": "source = event does not hold (source is 'web_form')"}


def test_fallback_rules_run_last_whatever_their_position(tenant):
    sdrs = team(tenant)
    sdr = rep(tenant, sdrs)
    rule(tenant, 1, Strategy.UNASSIGNED, name="Unassigned", is_fallback=True)
    rule(tenant, 10, team=sdrs)
    assert route(tenant).owner_id == sdr.pk


def test_a_lead_no_rule_matches_lands_in_unassigned_with_the_reason_and_each_rules_why(tenant):
    rule(tenant, 10, team=team(tenant), conditions=HOT, name="Hot")
    subject = lead(tenant, score=10)
    assignment = route(tenant, subject)
    subject = fresh(subject)
    assert subject.owner is None and subject.unassigned_reason == "No routing rule matches this lead"
    assert assignment.owner_id is None and assignment.reason == "No routing rule matches this lead"
    assert assignment.details["rules"][0]["why"] == "score >= 80 does not hold (score is 10)"


def test_all_reps_out_of_office_leaves_the_lead_unassigned_never_on_an_unavailable_rep(tenant):
    sdrs = team(tenant, "X")
    for _ in range(3):
        rep(tenant, sdrs, unavailable_from=NOW - timedelta(days=1), unavailable_until=NOW + timedelta(days=5))
    rule(tenant, 10, team=sdrs, name="Round-robin")
    rule(tenant, 99, Strategy.UNASSIGNED, name="Unassigned", is_fallback=True)
    subject = lead(tenant)
    assignment = route(tenant, subject)
    assert assignment.owner_id is None and fresh(subject).owner_id is None
    assert fresh(subject).unassigned_reason == "Rule 'Unassigned' sends these leads to the Unassigned queue"
    rr = assignment.details["rules"][0]
    assert rr["matched"] and not rr["placed"] and rr["why"] == "Every eligible rep of team X is out of office"


def test_a_rule_that_does_not_fall_through_stops_at_nobody_eligible(tenant):
    empty, backup = team(tenant, "Seniors"), team(tenant, "Backup")
    rep(tenant, empty, is_available=False)
    rep(tenant, backup)
    rule(tenant, 10, team=empty, fall_through=False, conditions=HOT)
    rule(tenant, 20, team=backup)
    assignment = route(tenant, score=95)
    assert assignment.owner_id is None
    assert assignment.reason == fresh(assignment.lead).unassigned_reason == "Every eligible rep of team Seniors is unavailable"
    assert route(tenant, score=20).owner_id is not None


def test_fall_through_tries_the_next_rule_when_nobody_can_take_the_lead(tenant):
    empty, backup = team(tenant, "Seniors"), team(tenant, "Backup")
    rep(tenant, empty, capacity=0)
    other = rep(tenant, backup)
    rule(tenant, 10, team=empty, conditions=HOT)
    rule(tenant, 20, team=backup)
    assert route(tenant, score=95).owner_id == other.pk


def test_score_based_routing_sends_high_scores_to_senior_aes(tenant):
    seniors, sdrs = team(tenant, "Senior AEs"), team(tenant, "SDRs")
    senior = rep(tenant, seniors, role=Role.AE, is_senior=True)
    sdr = rep(tenant, sdrs)
    rule(tenant, 10, team=seniors, roles=["ae"], conditions=HOT, name="Score 80+ to senior AEs")
    rule(tenant, 20, team=sdrs)
    hot = route(tenant, score=85)
    assert (hot.owner_id, hot.team.name, hot.rule_name) == (senior.pk, "Senior AEs", "Score 80+ to senior AEs")
    assert route(tenant, score=79).owner_id == sdr.pk


def test_skill_based_routing_sends_high_scores_to_the_rules_senior_people(tenant):
    aes = team(tenant, "AEs")
    seniors = [rep(tenant, aes, role=Role.AE, is_senior=True) for _ in range(2)]
    junior = rep(tenant, aes, role=Role.AE)
    rule(tenant, 10, members=seniors, conditions=HOT + [{"field": "product_interest", "operator": "not_blank"}],
         name="Enterprise interest, score 80+: seniors")
    rule(tenant, 20, team=aes)
    picks = [route(tenant, score=90, product_interest="Enterprise plan").owner_id for _ in range(4)]
    assert picks == [s.pk for s in seniors] * 2
    assert route(tenant, score=90).owner_id in {junior.pk, *(s.pk for s in seniors)}
    assert route(tenant, score=90).rule_name == "Rule 20"


def test_campaign_rule_routes_a_campaigns_leads_to_its_people(tenant):
    sdrs = team(tenant)
    rep(tenant, sdrs)
    webinar_host = rep(tenant, role=Role.AE)
    rule(tenant, 10, Strategy.DIRECT, members=[webinar_host], conditions=[
        {"field": "campaign", "operator": "equals", "value": "Q2 Webinar"}])
    rule(tenant, 20, team=sdrs)
    assert route(tenant, campaign="q2 webinar").owner_id == webinar_host.pk
    assert route(tenant, campaign="Other").owner_id != webinar_host.pk


def test_assignment_history_and_audit_record_rule_strategy_previous_owner_reason_and_actor(tenant):
    sdrs = team(tenant, "Inbound")
    first, second = rep(tenant, sdrs), rep(tenant, sdrs)
    rr = rule(tenant, 10, team=sdrs, name="Inbound RR")
    subject = lead(tenant)
    lead_route(lead=subject, actor=ROUTING_AGENT, trigger="capture", now=NOW)
    again = lead_route(lead=subject, actor=Actor.for_user(first), trigger="manual_reroute",
                       exclude_user_ids=[first.pk], now=NOW + timedelta(minutes=1))
    assert (again.owner_id, again.previous_owner_id, again.rule_id, again.rule_name, again.strategy) == (
        second.pk, first.pk, rr.pk, "Inbound RR", "round_robin")
    assert (again.trigger, again.actor_kind, again.actor_name, again.actor_user_id) == (
        "manual_reroute", "user", first.username, first.pk)
    subject = fresh(subject)
    assert (subject.owner_id, subject.team_id, subject.assigned_at) == (second.pk, sdrs.pk, NOW + timedelta(minutes=1))
    event = AuditEvent.objects.unscoped().filter(action="lead.assigned", object_id=str(subject.pk)).first()
    assert event.changes["owner"] == [first.pk, second.pk] and event.metadata["rule"] == "Inbound RR"
    first_event = AuditEvent.objects.unscoped().filter(action="lead.assigned").order_by("at", "id").first()
    assert first_event.actor_name == "Routing Agent"


def test_capture_of_a_new_lead_enqueues_routing_and_the_agent_assigns_it(tenant, lead_form,
                                                                         django_capture_on_commit_callbacks):
    sdrs = team(tenant)
    sdr = rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = lead_capture(tenant=tenant, data={"email": "new@prospect.example"}, actor=Actor.for_form(lead_form),
                              form=lead_form)
    assert len(callbacks) == 1  # one task: score, then route
    assignment = Assignment.objects.unscoped().get(lead=result.lead)
    assert (assignment.owner_id, assignment.trigger, assignment.actor_name) == (sdr.pk, "capture", "Routing Agent")
    with django_capture_on_commit_callbacks(execute=True):  # a duplicate submission does not re-route
        lead_capture(tenant=tenant, data={"email": "new@prospect.example"}, actor=Actor.for_form(lead_form),
                     form=lead_form)
    assert Assignment.objects.unscoped().filter(lead=result.lead).count() == 1


def test_a_captured_lead_is_scored_before_it_is_routed_so_score_rules_apply_at_capture(
        tenant, lead_form, django_capture_on_commit_callbacks):
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    seniors, sdrs = team(tenant, "Senior AEs"), team(tenant, "SDRs")
    senior, sdr = rep(tenant, seniors, role=Role.AE), rep(tenant, sdrs)
    rule(tenant, 10, team=seniors, name="Score 40+ to senior AEs", roles=["ae"],
         conditions=[{"field": "score", "operator": "range", "value": {"min": 40}}])
    rule(tenant, 20, team=sdrs)
    with django_capture_on_commit_callbacks(execute=True):
        big = lead_capture(tenant=tenant, actor=Actor.for_form(lead_form), form=lead_form,
                           data={"email": "ceo@bigcorp.example", "job_title": "CEO", "company_size": "2000"}).lead
        small = lead_capture(tenant=tenant, actor=Actor.for_form(lead_form), form=lead_form,
                             data={"email": "dev@tiny.example", "job_title": "Developer"}).lead
    big, small = fresh(big), fresh(small)
    assert big.score >= 40 and small.score < 40
    assert (big.owner_id, small.owner_id) == (senior.pk, sdr.pk)
    # One assignment each: the first band of a new lead does not trigger a second routing run.
    assert Assignment.objects.unscoped().filter(lead__in=[big, small]).count() == 2
    assert set(Assignment.objects.unscoped().values_list("trigger", flat=True)) == {"capture"}


def test_the_capture_task_is_idempotent(tenant):
    sdrs = team(tenant)
    rep(tenant, sdrs)
    rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    subject = lead(tenant)
    for _ in range(3):
        lead_route_task.delay(tenant_id=tenant.pk, lead_id=str(subject.pk), trigger="capture")
    assert Assignment.objects.unscoped().filter(lead=subject).count() == 1
    assert sum(RoundRobinSlot.objects.unscoped().values_list("served", flat=True)) == 1


def test_the_off_switch_stops_automatic_routing(tenant, lead_form, django_capture_on_commit_callbacks):
    sdrs = team(tenant)
    rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.ROUTING, enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        result = lead_capture(tenant=tenant, data={"email": "x@prospect.example"}, actor=Actor.for_form(lead_form),
                              form=lead_form)
    assert fresh(result.lead).owner_id is None and not Assignment.objects.unscoped().exists()
    assert routing_sweep_task(now=NOW + timedelta(days=400)) == 0


def _band_event(tenant, subject, to_band, score):
    ScoreEvent.objects.unscoped().create(tenant=tenant, lead=subject, kind=ScoreEventKind.BAND_CHANGED,
                                         from_band="warm", to_band=to_band, score=score)
    subject.__class__.objects.unscoped().filter(pk=subject.pk).update(band=to_band, score=score)
    score_events_dispatch(tenant=tenant)


def test_a_band_change_reroutes_an_unassigned_lead(tenant, django_capture_on_commit_callbacks):
    seniors = team(tenant, "Senior AEs")
    senior = rep(tenant, seniors, role=Role.AE)
    rule(tenant, 10, team=seniors, conditions=HOT)
    subject = lead(tenant, score=30)
    assert route(tenant, subject).owner_id is None
    with django_capture_on_commit_callbacks(execute=True):  # still no rule for it: no new history row
        _band_event(tenant, subject, "mql", 50)
    assert Assignment.objects.unscoped().filter(lead=subject).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        _band_event(tenant, subject, "sql", 90)
    latest = Assignment.objects.unscoped().filter(lead=subject).order_by("-at", "-id").first()
    assert (latest.owner_id, latest.trigger) == (senior.pk, "score_band")


def test_a_band_change_moves_an_unworked_lead_to_the_new_rule_but_never_a_worked_one(
        tenant, django_capture_on_commit_callbacks):
    seniors, sdrs = team(tenant, "Senior AEs"), team(tenant, "SDRs")
    senior = rep(tenant, seniors, role=Role.AE)
    sdr = rep(tenant, sdrs)
    rule(tenant, 10, team=seniors, conditions=HOT)
    rule(tenant, 20, team=sdrs)
    unworked, worked = lead(tenant, score=30), lead(tenant, score=30)
    route(tenant, unworked), route(tenant, worked)
    worked.__class__.objects.unscoped().filter(pk=worked.pk).update(first_contacted_at=NOW, status="contacted")
    with django_capture_on_commit_callbacks(execute=True):
        _band_event(tenant, unworked, "sql", 90)
        _band_event(tenant, worked, "sql", 90)
    assert fresh(unworked).owner_id == senior.pk
    assert fresh(worked).owner_id == sdr.pk
    with django_capture_on_commit_callbacks(execute=True):  # same rule still applies: nothing moves
        _band_event(tenant, unworked, "sql", 95)
    assert Assignment.objects.unscoped().filter(lead=unworked).count() == 2


def test_the_sweep_routes_leads_whose_routing_task_was_lost(tenant):
    sdrs = team(tenant)
    sdr = rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    lost = lead(tenant, created_at=NOW - timedelta(minutes=5))
    just_in = lead(tenant, created_at=NOW - timedelta(seconds=10))
    ancient = lead(tenant, created_at=NOW - timedelta(days=30))
    assert routing_sweep_task(now=NOW) == 1
    assert fresh(lost).owner_id == sdr.pk
    assert fresh(just_in).owner_id is None and fresh(ancient).owner_id is None
    assert routing_sweep_task(now=NOW) == 0
    assert lead_route_auto(tenant=tenant, lead_id=lost.pk, trigger="capture") is None



def test_lost_leads_are_open_ownerless_never_assigned_captured_within_the_window_and_only_the_tenants_own(
        tenant, other_tenant):
    five_minutes_ago = NOW - timedelta(minutes=5)
    lost = [lead(tenant, created_at=five_minutes_ago - timedelta(minutes=i)) for i in range(3)]
    lead(tenant, created_at=NOW - timedelta(seconds=10))  # its task may still be running
    lead(tenant, created_at=NOW - timedelta(days=2))  # left to managers
    lead(tenant, created_at=five_minutes_ago, status="converted")
    lead(tenant, created_at=five_minutes_ago, owner=rep(tenant))
    put_in_unassigned = lead(tenant, created_at=five_minutes_ago)
    Assignment.objects.unscoped().create(tenant=tenant, lead=put_in_unassigned, trigger="capture",
                                         actor_kind="agent", actor_name="Routing Agent", at=five_minutes_ago)
    lead(other_tenant, created_at=five_minutes_ago)
    lead(tenant, created_at=five_minutes_ago, pipeline_pending_since=five_minutes_ago)  # the pipeline sweep's
    assert leads_lost_before_routing(tenant=tenant, now=NOW) == [x.pk for x in reversed(lost)]  # oldest first
    assert leads_lost_before_routing(tenant=tenant, now=NOW, limit=2) == [lost[2].pk, lost[1].pk]


def test_routing_never_uses_another_tenants_rules_or_reps(tenant, other_tenant):
    theirs = team(other_tenant, "Inbound")
    stranger = rep(other_tenant, theirs)
    rule(other_tenant, 10, team=theirs)
    ours = team(tenant, "Inbound")
    rule(tenant, 10, team=ours)
    # a rule of ours pointing at their team or their user finds nobody
    rule(tenant, 5, Strategy.DIRECT, members=[stranger], name="Pointing at a stranger")
    assignment = route(tenant)
    assert assignment.owner_id is None
    assert [r["name"] for r in assignment.details["rules"]] == ["Pointing at a stranger", "Rule 10"]
    with pytest.raises(ValidationError):
        from routing.services.assign import lead_assign
        lead_assign(lead=lead(tenant), owner=stranger, actor=SYSTEM, trigger="reassignment")


def test_dry_run_explains_the_decision_and_writes_nothing(tenant):
    seniors, sdrs = team(tenant, "Senior AEs"), team(tenant, "SDRs")
    rep(tenant, seniors, role=Role.AE, is_available=False)
    sdr = rep(tenant, sdrs)
    rule(tenant, 10, team=seniors, conditions=HOT, name="Hot")
    rule(tenant, 20, team=sdrs, name="SDR round-robin", conditions=[
        {"field": "country", "operator": "in_list", "value": ["US", "CA"]}])
    rule(tenant, 30, Strategy.UNASSIGNED, name="Unassigned", is_fallback=True)
    subject = lead(tenant, score=90, country="US")
    with CaptureQueriesContext(connection) as queries:
        answer = route_dry_run(tenant=tenant, lead=subject, now=NOW)
        hypothetical = route_dry_run(tenant=tenant, values={"score": 10, "country": "FR"}, now=NOW)
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
              or "FOR UPDATE" in q["sql"]]
    assert writes == []
    assert not Assignment.objects.unscoped().exists() and not RoundRobinSlot.objects.unscoped().exists()
    assert answer["rule"]["name"] == "SDR round-robin" and answer["strategy"] == "round_robin"
    assert answer["owner"] == {"id": sdr.pk, "email": sdr.email} and answer["team"]["name"] == "SDRs"
    assert answer["rules"][0] == {"position": 10, "name": "Hot", "matched": True, "placed": False,
                                  "why": "Every eligible rep of team Senior AEs is unavailable"}
    assert hypothetical["owner"] is None and hypothetical["rule"]["name"] == "Unassigned"
    assert [r["matched"] for r in hypothetical["rules"]] == [False, False, True]
    assert hypothetical["rules"][1]["why"] == "country in US, CA does not hold (country is 'FR')"


def test_dry_run_refuses_bad_input_and_other_tenants_leads(tenant, other_tenant):
    with pytest.raises(ValidationError) as missing:
        route_dry_run(tenant=tenant)
    assert "lead" in missing.value.message_dict
    with pytest.raises(ValidationError) as unknown:
        route_dry_run(tenant=tenant, values={"shoe_size": 9})
    assert unknown.value.message_dict == {"values": ["Unknown lead field(s): shoe_size."]}
    with pytest.raises(ValidationError):
        route_dry_run(tenant=tenant, lead=lead(other_tenant))


def test_the_sweep_scores_a_lost_lead_before_routing_it_so_score_rules_see_its_score(tenant):
    """A capture task lost to a crash left the lead unscored: the sweep scores it first (issue 14)."""
    model = scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    seniors, sdrs = team(tenant, "Senior AEs"), team(tenant, "SDRs")
    senior = rep(tenant, seniors, role=Role.AE)
    sdr = rep(tenant, sdrs)
    rule(tenant, 10, team=seniors, conditions=[{"field": "score", "operator": "range", "value": {"min": 1}}])
    rule(tenant, 20, team=sdrs)
    lost = lead(tenant, created_at=NOW - timedelta(minutes=5), job_title="VP Marketing", company_size=500,
                industry="Software")
    assert fresh(lost).scored_at is None
    assert routing_sweep_task(now=NOW) == 1
    routed = fresh(lost)
    assert routed.scoring_model_id == model.pk and routed.scored_at is not None and routed.score > 0
    assert routed.owner_id == senior.pk != sdr.pk  # the score rule saw the score given in the same run
    assert Assignment.objects.unscoped().filter(lead=lost).count() == 1
