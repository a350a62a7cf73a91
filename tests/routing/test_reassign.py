"""Reassignment by a manager: one lead (to a person or through the rules), all open leads of a rep at once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Agent, AgentSetting, Membership, Role
from routing.models import Assignment
from routing.services.assign import lead_reassign, leads_reassign_bulk
from tests.support.routing import NOW, fresh, lead, owners, rep, rule, team

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(tenant):
    sdrs = team(tenant, "Inbound")
    leaving, a, b = rep(tenant, sdrs), rep(tenant, sdrs), rep(tenant, sdrs)
    manager = rep(tenant, role=Role.MANAGER)
    rule(tenant, 10, team=sdrs, name="Inbound RR")
    return sdrs, leaving, a, b, Actor.for_user(manager)


def test_a_manager_reassigns_one_lead_to_a_named_rep(tenant, setup):
    _sdrs, leaving, a, _b, manager = setup
    subject = lead(tenant, owner=leaving)
    assignment = lead_reassign(lead=subject, actor=manager, to_user=a, reason="Rep on leave",
                               expected_owner_id=leaving.pk, now=NOW)
    assert (assignment.owner_id, assignment.previous_owner_id, assignment.trigger, assignment.strategy) == (
        a.pk, leaving.pk, "reassignment", "direct")
    assert assignment.reason == "Rep on leave" and assignment.actor_kind == "user"
    assert fresh(subject).owner_id == a.pk


def test_reassigning_through_the_rules_skips_the_current_owner(tenant, setup):
    _sdrs, leaving, _a, _b, manager = setup
    subject = lead(tenant, owner=leaving)
    for _ in range(4):
        assignment = lead_reassign(lead=subject, actor=manager, reason="Rebalance", now=NOW)
        assert assignment.owner_id not in (None, assignment.previous_owner_id)
    assert assignment.reason.startswith("Rebalance: ")


def test_a_manual_reroute_of_an_unscored_lead_scores_it_first_so_score_rules_see_it(tenant, setup):
    from leadmgmt.audit.actors import SYSTEM
    from scoring.services import scoring_default_model_create

    sdrs, leaving, _a, _b, manager = setup
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    closers = team(tenant, "Closers")
    closer = rep(tenant, closers)
    rule(tenant, 1, team=closers, name="Scored leads", conditions=[{"field": "score", "operator": "range", "value": {"min": 0}}])
    subject = lead(tenant, owner=leaving, job_title="VP Marketing")  # captured before any scoring
    assert fresh(subject).scored_at is None
    assignment = lead_reassign(lead=subject, actor=manager, reason="Rebalance", now=NOW)
    assert fresh(subject).scored_at is not None and fresh(subject).score is not None
    assert assignment.owner_id == closer.pk and assignment.rule_name == "Scored leads"


def test_a_stale_expected_owner_is_refused_and_nothing_changes(tenant, setup):
    _sdrs, leaving, a, b, manager = setup
    subject = lead(tenant, owner=b)  # someone moved it to b since the manager loaded the page
    with pytest.raises(ValidationError) as err:
        lead_reassign(lead=subject, actor=manager, to_user=a, reason="x", expected_owner_id=leaving.pk)
    assert err.value.message_dict == {"owner": ["This lead was reassigned meanwhile; reload it and try again."]}
    assert fresh(subject).owner_id == b.pk and not Assignment.objects.unscoped().exists()


@pytest.mark.parametrize("problem", ["no_reason", "out_of_office", "other_tenant", "same_owner"])
def test_bad_reassignments_are_refused_with_a_field_message(tenant, other_tenant, setup, problem):
    _sdrs, leaving, a, _b, manager = setup
    subject = lead(tenant, owner=leaving)
    kwargs = {"lead": subject, "actor": manager, "to_user": a, "reason": "move"}
    if problem == "no_reason":
        kwargs["reason"] = "  "
    elif problem == "out_of_office":
        kwargs["to_user"] = rep(tenant, unavailable_from=NOW - timedelta(hours=1))
    elif problem == "other_tenant":
        kwargs["to_user"] = rep(other_tenant)
    else:
        kwargs["to_user"] = leaving
    with pytest.raises(ValidationError) as err:
        lead_reassign(**kwargs)
    assert set(err.value.message_dict) <= {"reason", "to_user"}
    assert fresh(subject).owner_id == leaving.pk and not Assignment.objects.unscoped().exists()


def test_manual_reassignment_works_with_the_routing_agent_switched_off(tenant, setup):
    _sdrs, leaving, a, b, manager = setup
    AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.ROUTING, enabled=False)
    subject = lead(tenant, owner=leaving)
    routed = lead_reassign(lead=subject, actor=manager, reason="Rebalance", now=NOW)
    assert routed.owner_id in (a.pk, b.pk)
    target = b if routed.owner_id == a.pk else a
    assert lead_reassign(lead=subject, actor=manager, to_user=target, reason="Named", now=NOW).owner_id == target.pk


def test_bulk_reassignment_through_the_rules_spreads_a_leaving_reps_open_leads(tenant, setup):
    _sdrs, leaving, a, b, manager = setup
    open_leads = [lead(tenant, owner=leaving, status=s) for s in ["new", "contacted", "qualified"] * 4]
    closed = lead(tenant, owner=leaving, status="converted")
    moved = leads_reassign_bulk(tenant=tenant, from_user=leaving, actor=manager, reason="Left the company", now=NOW)
    assert moved.count == 12 and not moved.unassigned
    assert {a.lead_id for a in moved.placed} == {x.pk for x in open_leads}
    assert owners(open_leads) == {a.pk: 6, b.pk: 6}
    assert fresh(closed).owner_id == leaving.pk
    assignments = Assignment.objects.unscoped().filter(trigger="bulk_reassignment")
    assert assignments.count() == 12 and {x.previous_owner_id for x in assignments} == {leaving.pk}
    assert AuditEvent.objects.unscoped().filter(action="lead.assigned").count() == 12
    assert leads_reassign_bulk(tenant=tenant, from_user=leaving, actor=manager, reason="again", now=NOW).count == 0


def test_bulk_reassignment_to_a_named_rep(tenant, setup):
    _sdrs, leaving, a, _b, manager = setup
    open_leads = [lead(tenant, owner=leaving) for _ in range(5)]
    assert leads_reassign_bulk(tenant=tenant, from_user=leaving, actor=manager, to_user=a, reason="Territory change",
                               now=NOW).count == 5
    assert owners(open_leads) == {a.pk: 5}


def test_bulk_reassignment_over_the_targets_cap_moves_nothing(tenant, setup):
    _sdrs, leaving, _a, _b, manager = setup
    small = rep(tenant, capacity=3)
    open_leads = [lead(tenant, owner=leaving) for _ in range(4)]
    with pytest.raises(ValidationError) as err:
        leads_reassign_bulk(tenant=tenant, from_user=leaving, actor=manager, to_user=small, reason="x", now=NOW)
    assert "at capacity" in err.value.message_dict["to_user"][0]
    assert owners(open_leads) == {leaving.pk: 4} and not Assignment.objects.unscoped().exists()


def test_bulk_reassignment_only_touches_the_tenants_own_leads(tenant, other_tenant, setup):
    _sdrs, leaving, _a, _b, manager = setup
    theirs = lead(other_tenant, owner=leaving)
    ours = lead(tenant, owner=leaving)
    assert leads_reassign_bulk(tenant=tenant, from_user=leaving, actor=manager, reason="x", now=NOW).count == 1
    assert fresh(theirs).owner_id == leaving.pk and fresh(ours).owner_id != leaving.pk


def test_bulk_reassignment_reports_each_lead_and_the_ones_the_rules_could_not_place(tenant, setup):
    _sdrs, leaving, a, b, manager = setup
    Membership.objects.unscoped().filter(tenant=tenant, user__in=[a, b]).update(is_available=False)
    stuck = [lead(tenant, owner=leaving) for _ in range(2)]
    result = leads_reassign_bulk(tenant=tenant, from_user=leaving, actor=manager, reason="Left", now=NOW)
    assert result.count == 2 and result.placed == []
    assert {x.lead_id for x in result.unassigned} == {x.pk for x in stuck}
    assert all(x.reason.startswith("Left: ") and x.owner_id is None for x in result.unassigned)
    assert owners(stuck) == {None: 2}
