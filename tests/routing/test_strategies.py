"""Each routing strategy, rep eligibility (availability, out-of-office ranges, roles, caps) and the selectors."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Account
from routing.models import Assignment, Strategy, Territory
from routing.selectors import (
    assignment_history,
    eligible_reps,
    latest_assignments,
    open_lead_counts,
    unassigned_leads,
)
from routing.services.assign import lead_route
from tests.support.routing import NOW, fresh, lead, rep, rule, team

pytestmark = pytest.mark.django_db


def route(tenant, **lead_fields):
    return lead_route(lead=lead(tenant, **lead_fields), actor=SYSTEM, trigger="capture", now=NOW)


def test_round_robin_rotates_strictly_through_the_team(tenant):
    sdrs = team(tenant)
    reps = [rep(tenant, sdrs) for _ in range(3)]
    rule(tenant, 10, team=sdrs)
    picks = [route(tenant).owner_id for _ in range(9)]
    assert picks[:3] == [r.pk for r in reps] and picks[3:6] == picks[:3] and picks[6:] == picks[:3]


def test_round_robin_skips_unavailable_and_out_of_office_reps(tenant):
    sdrs = team(tenant)
    on = rep(tenant, sdrs)
    rep(tenant, sdrs, is_available=False)
    rep(tenant, sdrs, unavailable_from=NOW - timedelta(days=1), unavailable_until=NOW + timedelta(days=1))
    rule(tenant, 10, team=sdrs)
    assert {route(tenant).owner_id for _ in range(4)} == {on.pk}


def test_out_of_office_is_a_date_range_start_inclusive_end_exclusive(tenant):
    sdrs = team(tenant)
    away = rep(tenant, sdrs, unavailable_from=NOW, unavailable_until=NOW + timedelta(days=3))
    rule(tenant, 10, team=sdrs)
    at = {"before": NOW - timedelta(seconds=1), "start": NOW, "inside": NOW + timedelta(days=1),
          "end": NOW + timedelta(days=3)}
    result = {k: bool(eligible_reps(tenant=tenant, team=sdrs, at=v)) for k, v in at.items()}
    assert result == {"before": True, "start": False, "inside": False, "end": True}
    assignment = lead_route(lead=lead(tenant), actor=SYSTEM, trigger="capture", now=NOW + timedelta(days=3))
    assert assignment.owner_id == away.pk


def test_role_filter_defaults_to_reps_and_follows_the_rule(tenant):
    mixed = team(tenant)
    sdr = rep(tenant, mixed, role=Role.SDR)
    ae = rep(tenant, mixed, role=Role.AE)
    rep(tenant, mixed, role=Role.MANAGER)
    any_rep = rule(tenant, 10, team=mixed, conditions=[{"field": "source", "operator": "equals", "value": "web_form"}])
    rule(tenant, 20, team=mixed, roles=["ae"])
    assert {route(tenant).owner_id for _ in range(4)} == {sdr.pk, ae.pk}
    assert {route(tenant, source="event").owner_id for _ in range(3)} == {ae.pk}
    assert any_rep.roles == []


def test_caps_are_respected_and_a_full_team_leaves_the_lead_unassigned(tenant):
    sdrs = team(tenant, "Inbound")
    capped = rep(tenant, sdrs, capacity=2)
    lead(tenant, owner=capped, status="contacted")  # counts as open
    lead(tenant, owner=capped, status="converted")  # does not
    other = rep(tenant, sdrs, capacity=1)
    rule(tenant, 10, team=sdrs)
    picks = [route(tenant).owner_id for _ in range(3)]
    assert Counter(picks) == Counter({capped.pk: 1, other.pk: 1, None: 1})
    assert open_lead_counts(tenant=tenant, user_ids=[capped.pk, other.pk]) == {capped.pk: 2, other.pk: 1}
    last = Assignment.objects.unscoped().filter(owner__isnull=True).get()
    assert last.reason == "Every eligible rep of team Inbound is at capacity"


def test_weighted_round_robin_follows_rule_weights_then_membership_weights(tenant):
    sdrs = team(tenant)
    heavy, light, by_membership, paused = (rep(tenant, sdrs), rep(tenant, sdrs), rep(tenant, sdrs, routing_weight=2),
                                          rep(tenant, sdrs))
    rule(tenant, 10, Strategy.WEIGHTED_ROUND_ROBIN, team=sdrs, members=[(heavy, 3), (light, 1), (paused, 0)])
    picks = Counter(route(tenant).owner_id for _ in range(60))
    assert picks == Counter({heavy.pk: 30, by_membership.pk: 20, light.pk: 10})


def test_capacity_strategy_picks_the_fewest_open_leads_and_never_exceeds_a_cap(tenant):
    sdrs = team(tenant)
    busy, idle, capped = rep(tenant, sdrs), rep(tenant, sdrs), rep(tenant, sdrs, capacity=1)
    for _ in range(3):
        lead(tenant, owner=busy)
    rule(tenant, 10, Strategy.CAPACITY, team=sdrs)
    picks = [route(tenant).owner_id for _ in range(6)]
    # idle and capped tie at 0 (rotation decides), capped is then full, idle catches up with busy at 3
    # and the tie at 3 goes to the one the rotation served least.
    assert picks == [idle.pk, capped.pk, idle.pk, idle.pk, busy.pk, idle.pk]
    assert open_lead_counts(tenant=tenant, user_ids=[capped.pk])[capped.pk] == 1


def test_direct_rule_routes_to_its_person_or_the_next_listed_one(tenant):
    first, second = rep(tenant, role=Role.AE), rep(tenant, role=Role.AE)
    rule(tenant, 10, Strategy.DIRECT, members=[first, second])
    assert route(tenant).owner_id == first.pk
    Membership.objects.unscoped().filter(tenant=tenant, user=first).update(is_available=False)
    assert route(tenant).owner_id == second.pk


def test_named_account_owner_wins_before_any_other_rule_even_at_a_later_position(tenant):
    sdrs = team(tenant)
    rep(tenant, sdrs)
    owner = rep(tenant, role=Role.AE)
    Account.objects.unscoped().create(tenant=tenant, domain="bigco.com", owner=owner)
    rule(tenant, 10, team=sdrs)
    named = rule(tenant, 50, Strategy.NAMED_ACCOUNT)
    assignment = route(tenant, company_domain="bigco.com")
    assert (assignment.owner_id, assignment.rule_id, assignment.strategy) == (owner.pk, named.pk, "named_account")
    assert assignment.reason == f"{owner.username} owns account bigco.com"
    assert route(tenant, company_domain="smallco.com").owner_id != owner.pk


def test_named_account_owner_out_of_office_falls_to_the_next_rule(tenant):
    sdrs = team(tenant)
    sdr = rep(tenant, sdrs)
    owner = rep(tenant, role=Role.AE, unavailable_from=NOW - timedelta(hours=1))
    account = Account.objects.unscoped().create(tenant=tenant, domain="bigco.com", owner=owner)
    rule(tenant, 5, Strategy.NAMED_ACCOUNT)
    rule(tenant, 10, team=sdrs)
    assignment = route(tenant, account=account, company_domain="bigco.com")
    assert assignment.owner_id == sdr.pk
    first = assignment.details["rules"][0]
    assert first["matched"] and not first["placed"]
    assert first["why"] == "The owner of account bigco.com is out of office"


def test_territory_routes_to_the_first_matching_territorys_team(tenant):
    emea, na, enterprise = team(tenant, "EMEA"), team(tenant, "NA"), team(tenant, "Enterprise")
    emea_rep, na_rep, ent_rep = rep(tenant, emea), rep(tenant, na), rep(tenant, enterprise)
    Territory.objects.unscoped().create(tenant=tenant, name="Enterprise", position=1, team=enterprise,
                                        company_size_min=1000, industries=["Software", "SaaS"])
    Territory.objects.unscoped().create(tenant=tenant, name="EMEA", position=2, team=emea, regions=["EMEA"])
    Territory.objects.unscoped().create(tenant=tenant, name="North America", position=3, team=na,
                                        countries=["US", "United States", "Canada"])
    rule(tenant, 10, Strategy.TERRITORY)
    assert route(tenant, country="Germany", company_size=50).owner_id == emea_rep.pk
    assert route(tenant, country="US", company_size=50).owner_id == na_rep.pk
    big = route(tenant, country="US", company_size=5000, industry="saas")
    assert (big.owner_id, big.team.name) == (ent_rep.pk, "Enterprise")
    nowhere = route(tenant, country="Brazil")
    assert nowhere.owner_id is None and "no territory matches" in nowhere.details["rules"][0]["why"]


def test_territory_rotation_skips_out_of_office_reps(tenant):
    emea = team(tenant, "EMEA")
    rep(tenant, emea, unavailable_from=NOW - timedelta(days=2), unavailable_until=NOW + timedelta(days=2))
    present = rep(tenant, emea)
    Territory.objects.unscoped().create(tenant=tenant, name="EMEA", team=emea, countries=["DE"])
    rule(tenant, 10, Strategy.TERRITORY)
    assert {route(tenant, country="de").owner_id for _ in range(3)} == {present.pk}


def test_selectors_never_show_another_tenants_reps_leads_or_history(tenant, other_tenant):
    ours, theirs = team(tenant, "Inbound"), team(other_tenant, "Inbound")
    mine = rep(tenant, ours)
    shared_user = rep(other_tenant, theirs)
    lead(other_tenant, owner=shared_user)
    assert [m.user_id for m in eligible_reps(tenant=tenant, team=theirs, at=NOW)] == []
    assert [m.user_id for m in eligible_reps(tenant=tenant, user_ids=[shared_user.pk, mine.pk], at=NOW)] == [mine.pk]
    assert open_lead_counts(tenant=tenant, user_ids=[shared_user.pk]) == {shared_user.pk: 0}
    assert [m.user_id for m in eligible_reps(tenant=tenant, at=NOW)] == [mine.pk]  # no target: the whole tenant
    their_lead = lead(other_tenant)
    rule(other_tenant, 10, team=theirs)
    lead_route(lead=their_lead, actor=SYSTEM, trigger="capture", now=NOW)
    lead(other_tenant)
    unowned = lead(tenant)
    assert list(unassigned_leads(tenant=tenant)) == [unowned]
    assert list(assignment_history(tenant=tenant, lead=their_lead)) == []
    assert assignment_history(tenant=other_tenant, lead=their_lead).count() == 1


def test_unassigned_queue_and_history_read_in_bounded_queries(tenant, django_assert_max_num_queries):
    sdrs = team(tenant)
    rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    subject = lead(tenant)
    for _ in range(5):
        lead_route(lead=subject, actor=SYSTEM, trigger="manual_reroute", now=NOW)
        lead(tenant)
    with django_assert_max_num_queries(1):
        rows = list(assignment_history(tenant=tenant, lead=subject))
        [(a.owner.email, a.team.name) for a in rows]
    with django_assert_max_num_queries(1):
        [(x.email, x.team) for x in unassigned_leads(tenant=tenant)]
    assert fresh(subject).owner is not None


def test_latest_assignments_reads_each_leads_newest_assignment_in_its_own_tenant(
        tenant, other_tenant, django_assert_max_num_queries):
    ours, theirs = team(tenant), team(other_tenant)
    first, second = rep(tenant, ours), rep(tenant, ours)
    stranger = rep(other_tenant, theirs)
    rule(tenant, 10, team=ours)
    rule(other_tenant, 10, team=theirs)
    mine, unrouted, foreign = lead(tenant), lead(tenant), lead(other_tenant)
    lead_route(lead=mine, actor=SYSTEM, trigger="capture", now=NOW)
    newest = lead_route(lead=mine, actor=SYSTEM, trigger="manual_reroute", exclude_user_ids=[first.pk],
                        now=NOW + timedelta(minutes=1))
    lead_route(lead=foreign, actor=SYSTEM, trigger="capture", now=NOW)
    with django_assert_max_num_queries(2):  # one per tenant: each read in its own tenant (row-level security)
        latest = latest_assignments(leads=[mine, unrouted, foreign])
        assert {k: (a.pk, a.owner.pk) for k, a in latest.items()} == {
            mine.pk: (newest.pk, second.pk), foreign.pk: (latest[foreign.pk].pk, stranger.pk)}
