"""Routing API: dry run, taxonomy, assignment history, reassign (one, bulk); role rules, another tenant's lead is a 404, bad input is 400 with field errors, bounded query counts."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import ApiScope
from leads.models import LeadStatus
from routing.models import Assignment, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import api_key_for
from tests.support.lead_api import BANT, errors, owned, url
from tests.support.routing import fresh, lead, rep, team

pytestmark = pytest.mark.django_db










# --- accept / reject / qualify ------------------------------------------------------------------------














# --- history and reassignment ------------------------------------------------------------------------------


def test_assignment_history_has_rule_strategy_previous_owner_reason_trigger_actor(tenant, api_org, api_client):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    clients["manager"].post(url(mql, "reassign"), {"to_user_id": people["sdr2"].pk, "reason": "Holiday"},
                            format="json")

    rows = api_client.get(url(mql, "assignments")).json()["results"]

    assert [r["trigger"] for r in rows] == ["reassignment", "capture"]
    latest = rows[0]
    assert (latest["owner"]["id"], latest["previous_owner"]["id"], latest["strategy"]) == (
        people["sdr2"].pk, people["sdr"].pk, "direct")
    assert "Holiday" in latest["reason"] and latest["actor"]["user_id"] == people["manager"].pk
    assert set(latest) >= {"at", "rule", "team", "details"}


def test_assignment_history_query_count_is_bounded(tenant, api_org, api_client, django_assert_max_num_queries):
    people, _ = api_org
    mql = owned(tenant, people["sdr"])
    for i in range(20):
        lead_assign(lead=mql, owner=people["sdr2" if i % 2 else "sdr"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    with django_assert_max_num_queries(6):
        assert len(api_client.get(url(mql, "assignments")).json()["results"]) == 21


def test_only_managers_admins_and_keys_reassign(tenant, api_org):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    body = {"to_user_id": people["sdr2"].pk, "reason": "Load"}
    assert clients["sdr"].post(url(mql, "reassign"), body, format="json").status_code == 403
    assert clients["manager"].post(url(mql, "reassign"), body, format="json").status_code == 200
    assert fresh(mql).owner == people["sdr2"]


@pytest.mark.parametrize("body, field", [
    ({"to_user_id": 999999, "reason": "x"}, "to_user_id"),
    ({"reason": ""}, "reason"),
    ({"to_user_id": "abc", "reason": "x"}, "to_user_id"),
])
def test_bad_reassignments_are_field_errors(tenant, api_org, body, field):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    response = clients["admin"].post(url(mql, "reassign"), body, format="json")
    assert response.status_code == 400 and field in errors(response)
    assert fresh(mql).owner == people["sdr"]


def test_reassigning_to_another_tenants_user_is_refused(tenant, other_tenant, api_org):
    people, clients = api_org
    outsider = rep(other_tenant)
    mql = owned(tenant, people["sdr"])
    response = clients["admin"].post(url(mql, "reassign"), {"to_user_id": outsider.pk, "reason": "x"}, format="json")
    assert response.status_code == 400 and "to_user_id" in errors(response)


def test_bulk_reassignment_moves_every_open_lead_of_a_rep(tenant, api_org):
    people, clients = api_org
    leads = [owned(tenant, people["sdr"]) for _ in range(3)]
    done = owned(tenant, people["sdr"], status=LeadStatus.CONVERTED)
    response = clients["manager"].post("/api/v1/leads/reassign-bulk/", {
        "from_user_id": people["sdr"].pk, "to_user_id": people["sdr2"].pk, "reason": "Left the company"},
        format="json")
    assert response.status_code == 200 and response.json() == {"moved": 3}
    assert {fresh(x).owner for x in leads} == {people["sdr2"]} and fresh(done).owner == people["sdr"]
    assert Assignment.objects.unscoped().filter(trigger=Trigger.BULK_REASSIGNMENT).count() == 3


def test_bulk_reassignment_rules(tenant, other_tenant, api_org):
    people, clients = api_org
    endpoint = "/api/v1/leads/reassign-bulk/"
    outsider = rep(other_tenant)
    body = {"from_user_id": people["west_sdr"].pk, "reason": "x"}
    assert clients["manager"].post(endpoint, body, format="json").status_code == 403, "not the manager's team"
    assert clients["sdr"].post(endpoint, {**body, "from_user_id": people["sdr"].pk}, format="json").status_code == 403
    bad = clients["admin"].post(endpoint, {"from_user_id": outsider.pk, "reason": "x"}, format="json")
    assert bad.status_code == 400 and "from_user_id" in errors(bad)
    missing = clients["admin"].post(endpoint, {}, format="json")
    assert missing.status_code == 400 and {"from_user_id", "reason"} <= set(errors(missing))


# --- dry run, taxonomy, cross-tenant ---------------------------------------------------------------------


def test_dry_run_by_values_and_by_lead_writes_nothing(tenant, api_org, api_client):
    people, clients = api_org
    RoutingRuleTeam = team(tenant, "DACH")
    dach_rep = rep(tenant, RoutingRuleTeam)
    from tests.support.routing import rule

    rule(tenant, 5, team=RoutingRuleTeam, conditions=[{"field": "country", "operator": "equals",
                                                        "value": "Germany"}], name="DACH")
    response = clients["ops"].post("/api/v1/routing/dry-run/", {"values": {"country": "Germany"}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rule"]["name"] == "DACH" and body["owner"]["id"] == dach_rep.pk
    assert body["strategy"] == "round_robin" and body["rules"][-1]["placed"] is True

    unrouted = lead(tenant, country="France")
    by_lead = api_client.post("/api/v1/routing/dry-run/", {"lead_id": str(unrouted.pk)}, format="json")
    assert by_lead.status_code == 200 and by_lead.json()["rules"][0]["matched"] is False
    assert not Assignment.objects.unscoped().filter(lead=unrouted).exists()


def test_dry_run_bad_input_and_roles(tenant, other_tenant, api_org):
    people, clients = api_org
    ops = clients["ops"]
    endpoint = "/api/v1/routing/dry-run/"
    assert ops.post(endpoint, {}, format="json").status_code == 400
    both = ops.post(endpoint, {"lead_id": str(lead(tenant).pk), "values": {}}, format="json")
    assert both.status_code == 400 and "lead_id" in errors(both)
    unknown = ops.post(endpoint, {"values": {"shoe_size": 44}}, format="json")
    assert unknown.status_code == 400 and "values" in errors(unknown)
    theirs = lead(other_tenant)
    assert ops.post(endpoint, {"lead_id": str(theirs.pk)}, format="json").status_code == 404
    assert clients["sdr"].post(endpoint, {"values": {}}, format="json").status_code == 403


def test_rejection_reasons_are_the_tenants_active_taxonomy(tenant, other_tenant, api_org):
    from routing.models import RejectionReason

    RejectionReason.objects.unscoped().create(tenant=other_tenant, code="theirs", label="Theirs")
    RejectionReason.objects.unscoped().filter(tenant=tenant, code="spam").update(is_active=False)
    rows = api_org[1]["sdr"].get("/api/v1/routing/rejection-reasons/").json()
    codes = [r["code"] for r in rows]
    assert "not_icp" in codes and "spam" not in codes and "theirs" not in codes
    assert {"code": "not_now", "label": "Timing: not now", "nurture": True} in rows


def test_another_tenants_lead_is_a_404_on_every_endpoint(tenant, other_tenant, api_org):
    people, clients = api_org
    theirs_owner = rep(other_tenant)
    theirs = owned(other_tenant, theirs_owner)
    _key, raw = api_key_for(tenant, scopes=[ApiScope.LEADS_READ, ApiScope.LEADS_WRITE])
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert key.get(url(theirs, "assignments")).status_code == 404
    assert key.post(url(theirs, "reassign"), {"reason": "x"}, format="json").status_code == 404
    for action, body in (("accept", {}), ("reject", {"reason": "spam"}), ("qualify", BANT)):
        assert clients["admin"].post(url(theirs, action), body, format="json").status_code == 404
    assert fresh(theirs).owner == theirs_owner


def test_read_only_keys_cannot_reassign(tenant, api_org):
    mql = owned(tenant, api_org[0]["sdr"])
    _key, raw = api_key_for(tenant, scopes=[ApiScope.LEADS_READ])
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert key.get(url(mql, "assignments")).status_code == 200
    assert key.post(url(mql, "reassign"), {"reason": "x"}, format="json").status_code == 403


def test_lead_list_with_assignments_and_teams_stays_bounded(tenant, api_org, api_client, django_assert_max_num_queries):
    people, _ = api_org
    from leadmgmt.tenancy.models import Team

    east = Team.objects.unscoped().get(tenant=tenant, name="East")
    for i in range(30):
        owned(tenant, people["sdr" if i % 2 else "sdr2"], team_=east)
    with django_assert_max_num_queries(5):
        rows = api_client.get("/api/v1/leads/", {"page_size": 50}).json()["results"]
    assert len(rows) == 30
    assert all(r["team"]["name"] == "East" and r["latest_assignment"]["trigger"] == "capture" for r in rows)
