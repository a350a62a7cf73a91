"""Routing on the account score: a rule condition `account_score >= 60` is validated, described and matched
like a lead field; the capture pipeline's batch reads the batch's account scores in one query, never per lead."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Account, Lead
from routing.conditions import conditions_errors, conditions_match
from routing.services.assign import leads_route_captured
from routing.services.dry_run import route_dry_run
from tests.support.factories import AccountFactory
from tests.support.routing import NOW, fresh, lead, rep, rule, team

pytestmark = pytest.mark.django_db
ENGAGED_ACCOUNT = [{"field": "account_score", "operator": "range", "value": {"min": 60}}]


def scored_account(tenant, score, **kwargs):
    account = AccountFactory(tenant=tenant, **kwargs)
    Account.objects.unscoped().filter(pk=account.pk).update(score=score, engaged_leads=3)
    return account


def test_account_score_is_a_number_field_of_routing_conditions():
    assert conditions_errors(ENGAGED_ACCOUNT) == {}
    assert conditions_errors([{"field": "account_score", "operator": "contains", "value": "6"}]) == {
        "conditions": ["Condition 1: operator 'contains' does not apply to the number field 'account_score'."]}
    assert conditions_match({"account_score": 72}, ENGAGED_ACCOUNT) == (True, "all conditions hold: account_score >= 60")
    assert conditions_match({"account_score": None}, ENGAGED_ACCOUNT) == (
        False, "account_score >= 60 does not hold (account_score is blank)")


def _rules(tenant):
    ae_team, sdr_team = team(tenant, "AEs"), team(tenant, "SDRs")
    ae, sdr = rep(tenant, ae_team), rep(tenant, sdr_team)
    hot = rule(tenant, 10, team=ae_team, name="Engaged accounts", conditions=ENGAGED_ACCOUNT)
    rule(tenant, 20, team=sdr_team, name="Everyone else")
    return ae, sdr, hot


def test_a_lead_of_an_engaged_account_goes_to_the_account_rule_and_one_of_a_quiet_account_does_not(tenant):
    from routing.services.assign import lead_route

    ae, sdr, hot = _rules(tenant)
    engaged, quiet = scored_account(tenant, 72), scored_account(tenant, 40)
    first = lead_route(lead=lead(tenant, account=engaged), actor=SYSTEM, trigger="capture", now=NOW)
    assert (first.owner_id, first.rule_id) == (ae.pk, hot.pk)
    second = lead_route(lead=lead(tenant, account=quiet), actor=SYSTEM, trigger="capture", now=NOW)
    assert second.owner_id == sdr.pk
    assert second.details["rules"][0]["why"] == "account_score >= 60 does not hold (account_score is 40)"
    nobody = lead_route(lead=lead(tenant), actor=SYSTEM, trigger="capture", now=NOW)
    assert nobody.owner_id == sdr.pk and "account_score is blank" in nobody.details["rules"][0]["why"]


def test_the_dry_run_reads_the_account_score_of_a_lead_or_takes_a_hypothetical_one(tenant):
    _rules(tenant)
    engaged = scored_account(tenant, 90)
    assert route_dry_run(tenant=tenant, lead=fresh(lead(tenant, account=engaged)), now=NOW)["rule"]["name"] == \
        "Engaged accounts"
    assert route_dry_run(tenant=tenant, values={"account_score": 61}, now=NOW)["rule"]["name"] == "Engaged accounts"
    assert route_dry_run(tenant=tenant, values={"account_id": engaged.pk}, now=NOW)["rule"]["name"] == \
        "Engaged accounts"
    assert route_dry_run(tenant=tenant, values={"account_score": 59}, now=NOW)["rule"]["name"] == "Everyone else"


def _route_batch(tenant, leads) -> list[str]:
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        assignments = leads_route_captured(tenant=tenant, lead_ids=[x.pk for x in leads], now=NOW)
    assert len(assignments) == len(leads)
    return [q["sql"] for q in queries.captured_queries if '"leads_account"' in q["sql"] or "leads_account " in q["sql"]]


def test_the_capture_batch_reads_its_account_scores_in_one_query_whatever_its_size(tenant):
    ae, sdr, _hot = _rules(tenant)
    accounts = [scored_account(tenant, 80), scored_account(tenant, 30), scored_account(tenant, 65)]
    small = [lead(tenant, account=accounts[i % 3]) for i in range(3)]
    large = [lead(tenant, account=accounts[i % 3]) for i in range(12)]
    assert len(_route_batch(tenant, small)) == 1
    assert len(_route_batch(tenant, large)) == 1
    owners = {x.account_id: set() for x in large}
    for x in large:
        x.refresh_from_db()
        owners[x.account_id].add(x.owner_id)
    assert owners == {accounts[0].pk: {ae.pk}, accounts[1].pk: {sdr.pk}, accounts[2].pk: {ae.pk}}


def test_rules_that_never_read_the_account_score_never_look_it_up(tenant):
    sdrs = team(tenant)
    rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    leads = [lead(tenant, account=scored_account(tenant, 80)) for _ in range(3)]
    assert _route_batch(tenant, leads) == []


def test_another_tenants_account_score_is_never_read(tenant, other_tenant):
    from routing.services.assign import lead_route

    _ae, sdr, _hot = _rules(tenant)
    theirs = scored_account(other_tenant, 95)
    # A lead pointing at another tenant's account (never made by the app) must not see that account's score.
    stray = lead(tenant)
    Lead.objects.unscoped().filter(pk=stray.pk).update(account_id=theirs.pk)
    with tenant_scope(tenant):  # as the app runs: row-level security holds it to its tenant
        assignment = lead_route(lead=fresh(stray), actor=SYSTEM, trigger="capture", now=NOW)
        assert route_dry_run(tenant=tenant, values={"account_id": theirs.pk}, now=NOW)["rule"]["name"] == \
            "Everyone else"
        with transaction.atomic():
            leads_route_captured(tenant=tenant, lead_ids=[lead(tenant, account=theirs).pk], now=NOW)
    assert assignment.owner_id == sdr.pk
    assert Lead.objects.unscoped().filter(account=theirs, owner_id=sdr.pk).count() == 2
