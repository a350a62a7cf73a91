"""The capture run routes a batch with a fixed number of statements, and decides exactly as lead by lead."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Role
from routing.models import Assignment, Strategy, Trigger
from routing.services.assign import ROUTING_AGENT, lead_route, leads_route_captured
from tests.support.factories import AccountFactory
from tests.support.routing import NOW, fresh, lead, rep, rule, team
from tests.support.sla import sla_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed(tenant):
    """A named-account rule, a country rule whose only rep is away (its leads wait in Unassigned, and their
    managers hear of it), then a round robin of capped reps."""
    sdrs, germany = team(tenant), team(tenant, name="Germany")
    rep(tenant, germany, role=Role.MANAGER)
    reps = [rep(tenant, sdrs, capacity=1000), rep(tenant, sdrs, capacity=1000), rep(tenant, sdrs, capacity=3)]
    rep(tenant, germany, is_available=False)
    rule(tenant, 5, Strategy.NAMED_ACCOUNT)
    rule(tenant, 10, team=germany, name="Germany", fall_through=False,
         conditions=[{"field": "country", "operator": "equals", "value": "DE"}])
    rule(tenant, 20, team=sdrs)
    sla_policy(tenant, minutes=30)
    return tenant, reps


def _batch(tenant, reps, n, *, prefix):
    """n new leads of n distinct accounts: every other account owned (the capped rep's soon at capacity), half
    the leads linked to their account and half known by their company domain only, every fifth one German."""
    leads = []
    for i in range(n):
        account = AccountFactory(tenant=tenant, domain=f"{prefix}{i}.example",
                                 owner=reps[i % 3] if i % 2 == 0 else None)
        leads.append(lead(tenant, email=f"x{i}@{account.domain}", company_domain=account.domain,
                          account=account if i % 4 < 2 else None, country="DE" if i % 5 == 3 else ""))
    return leads


def _route(tenant, leads):
    with tenant_scope(tenant):
        return leads_route_captured(tenant=tenant, lead_ids=[x.pk for x in leads], now=NOW)


def test_a_captured_batch_takes_the_same_statements_whatever_its_size(routed):
    """Accounts, account owners, open-lead counts, slots, assignments, clocks, audit events and alerts are
    read and written a batch at a time: 40 leads of 40 accounts take the statements 5 leads take."""
    tenant, reps = routed
    _route(tenant, _batch(tenant, reps, 5, prefix="warm-"))  # the pools' round-robin slots exist from now on
    statements = {}
    for n in (5, 40):
        leads = _batch(tenant, reps, n, prefix=f"size{n}-")
        with CaptureQueriesContext(connection) as queries:
            assignments = _route(tenant, leads)
        statements[n] = len(queries)
        assert len(assignments) == n
        assert {a.strategy for a in assignments} == {Strategy.NAMED_ACCOUNT, Strategy.ROUND_ROBIN}
        assert any(a.owner_id is None for a in assignments)
    assert statements[40] == statements[5], statements


def _decisions(tenant, leads) -> list[tuple]:
    rows = {a.lead_id: a for a in Assignment.objects.unscoped().filter(lead_id__in=[x.pk for x in leads])}
    return [(rows[x.pk].owner_id, rows[x.pk].rule_id, rows[x.pk].strategy, rows[x.pk].reason, rows[x.pk].details)
            for x in leads]


def test_a_captured_batch_decides_like_routing_its_leads_one_by_one(routed):
    """Same owners, rules and reasons as lead_route lead by lead: the capped rep's account leads fall through
    to the round robin once the batch's earlier leads filled them up, and the rotation stays strict."""
    tenant, reps = routed
    leads = _batch(tenant, reps, 40, prefix="same-")

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            _route(tenant, leads)
            batch = _decisions(tenant, leads)
            raise Undo
    except Undo:
        pass
    assert not Assignment.objects.unscoped().filter(lead_id__in=[x.pk for x in leads]).exists()
    with tenant_scope(tenant):
        for x in sorted(leads, key=lambda x: (x.created_at, x.pk)):
            lead_route(lead=fresh(x), actor=ROUTING_AGENT, trigger=Trigger.CAPTURE, now=NOW)
    assert batch == _decisions(tenant, leads)
    whys = [step.get("why", "") for *_decision, details in batch for step in details["rules"]]
    assert any(why.endswith("is at capacity") for why in whys)
    assert any(owner is None for owner, *_rest in batch)
