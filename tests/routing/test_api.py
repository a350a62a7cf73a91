"""Routing API: dry run, taxonomy, assignment history, reassign (one, bulk), accept/reject/qualify; role
rules, another tenant's lead is a 404, bad input is 400 with field errors, bounded query counts."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import ApiScope, Role
from leads.models import LeadStage, LeadStatus, Opportunity
from routing.defaults import routing_defaults_create
from routing.models import Assignment, Territory, Trigger
from routing.services.assign import lead_assign

from ..factories import api_key_for
from .routing_helpers import fresh, lead, rep, team

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k", "authority": "VP Sales", "need": "Slow follow-up", "timeline": "Q3"}


def url(lead_, action) -> str:
    return f"/api/v1/leads/{lead_.pk}/{action}/"


@pytest.fixture
def org(tenant, client_for):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    east, aes, west = team(tenant, "East"), team(tenant, "AEs"), team(tenant, "West")
    people = {
        "manager": rep(tenant, east, role=Role.MANAGER),
        "sdr": rep(tenant, east),
        "sdr2": rep(tenant, east),
        "west_sdr": rep(tenant, west),
        "ae": rep(tenant, aes, role=Role.AE),
        "admin": rep(tenant, role=Role.ADMIN),
        "ops": rep(tenant, role=Role.MARKETING_OPS),
    }
    Territory.objects.unscoped().create(tenant=tenant, name="Everywhere", team=aes)
    clients = {name: client_for(user) for name, user in people.items()}
    return people, clients


def owned(tenant, owner, team_=None, **fields):
    fields.setdefault("stage", LeadStage.MQL)
    new = lead(tenant, **fields)
    lead_assign(lead=new, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE, team=team_)
    return fresh(new)


def errors(response) -> dict:
    return response.json()["errors"]


# --- accept / reject / qualify ------------------------------------------------------------------------


def test_owner_accepts_and_the_answer_is_the_lead(tenant, org):
    people, clients = org
    mql = owned(tenant, people["sdr"])
    response = clients["sdr"].post(url(mql, "accept"), {"expected_owner_id": people["sdr"].pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stage"] == "sal" and body["accepted_at"] and body["sla_due_at"] is None
    assert body["latest_assignment"]["owner"]["id"] == people["sdr"].pk


def test_reps_act_only_on_their_own_leads_managers_on_their_teams(tenant, org):
    people, clients = org
    mql = owned(tenant, people["sdr"])
    west = owned(tenant, people["west_sdr"])
    assert clients["sdr2"].post(url(mql, "accept"), {}, format="json").status_code == 404, "not visible to her"
    assert clients["ops"].post(url(mql, "reject"), {"reason": "spam"}, format="json").status_code == 403
    assert clients["manager"].post(url(west, "reject"), {"reason": "spam"}, format="json").status_code == 404
    response = clients["manager"].post(url(mql, "reject"), {"reason": "no_budget"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"


def test_an_api_key_cannot_accept_reject_or_qualify(tenant, org, api_client):
    mql = owned(tenant, org[0]["sdr"])
    for action, body in (("accept", {}), ("reject", {"reason": "spam"}), ("qualify", BANT)):
        assert api_client.post(url(mql, action), body, format="json").status_code == 403


def test_reject_needs_a_taxonomy_reason(tenant, org):
    people, clients = org
    mql = owned(tenant, people["sdr"])
    missing = clients["sdr"].post(url(mql, "reject"), {}, format="json")
    assert missing.status_code == 400 and "reason" in errors(missing)
    unknown = clients["sdr"].post(url(mql, "reject"), {"reason": "meh", "note": "x"}, format="json")
    assert unknown.status_code == 400 and "not_icp" in errors(unknown)["reason"][0]
    assert fresh(mql).status == LeadStatus.NEW
    not_now = clients["sdr"].post(url(mql, "reject"), {"reason": "not_now"}, format="json")
    assert not_now.json()["status"] == "recycled" and not_now.json()["owner"] is None


def test_qualify_hands_off_to_an_ae_and_bad_bant_is_field_errors(tenant, org):
    people, clients = org
    mql = owned(tenant, people["sdr"])
    bad = clients["sdr"].post(url(mql, "qualify"), {"budget": "", "authority": "CEO"}, format="json")
    assert bad.status_code == 400 and {"budget", "need", "timeline"} <= set(errors(bad))

    response = clients["sdr"].post(url(mql, "qualify"), BANT, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["opportunity"]["owner"]["id"] == people["ae"].pk and body["opportunity"]["budget"] == "$50k"
    assert body["lead"]["stage"] == "sql" and body["lead"]["owner"]["id"] == people["ae"].pk
    assert body["lead"]["latest_assignment"]["trigger"] == "handoff"
    assert Opportunity.objects.unscoped().filter(lead=mql).count() == 1


def test_a_stale_action_is_a_400_on_owner(tenant, org):
    people, clients = org
    mql = owned(tenant, people["sdr"])
    response = clients["manager"].post(url(mql, "reject"), {"reason": "spam", "expected_owner_id": people["sdr2"].pk},
                                       format="json")
    assert response.status_code == 400 and "reassigned meanwhile" in errors(response)["owner"][0]


# --- history and reassignment ------------------------------------------------------------------------------


def test_assignment_history_has_rule_strategy_previous_owner_reason_trigger_actor(tenant, org, api_client):
    people, clients = org
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


def test_assignment_history_query_count_is_bounded(tenant, org, api_client, django_assert_max_num_queries):
    people, _ = org
    mql = owned(tenant, people["sdr"])
    for i in range(20):
        lead_assign(lead=mql, owner=people["sdr2" if i % 2 else "sdr"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    with django_assert_max_num_queries(6):
        assert len(api_client.get(url(mql, "assignments")).json()["results"]) == 21


def test_only_managers_admins_and_keys_reassign(tenant, org):
    people, clients = org
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
def test_bad_reassignments_are_field_errors(tenant, org, body, field):
    people, clients = org
    mql = owned(tenant, people["sdr"])
    response = clients["admin"].post(url(mql, "reassign"), body, format="json")
    assert response.status_code == 400 and field in errors(response)
    assert fresh(mql).owner == people["sdr"]


def test_reassigning_to_another_tenants_user_is_refused(tenant, other_tenant, org):
    people, clients = org
    outsider = rep(other_tenant)
    mql = owned(tenant, people["sdr"])
    response = clients["admin"].post(url(mql, "reassign"), {"to_user_id": outsider.pk, "reason": "x"}, format="json")
    assert response.status_code == 400 and "to_user_id" in errors(response)


def test_bulk_reassignment_moves_every_open_lead_of_a_rep(tenant, org):
    people, clients = org
    leads = [owned(tenant, people["sdr"]) for _ in range(3)]
    done = owned(tenant, people["sdr"], status=LeadStatus.CONVERTED)
    response = clients["manager"].post("/api/v1/leads/reassign-bulk/", {
        "from_user_id": people["sdr"].pk, "to_user_id": people["sdr2"].pk, "reason": "Left the company"},
        format="json")
    assert response.status_code == 200 and response.json() == {"moved": 3}
    assert {fresh(x).owner for x in leads} == {people["sdr2"]} and fresh(done).owner == people["sdr"]
    assert Assignment.objects.unscoped().filter(trigger=Trigger.BULK_REASSIGNMENT).count() == 3


def test_bulk_reassignment_rules(tenant, other_tenant, org):
    people, clients = org
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


def test_dry_run_by_values_and_by_lead_writes_nothing(tenant, org, api_client):
    people, clients = org
    RoutingRuleTeam = team(tenant, "DACH")
    dach_rep = rep(tenant, RoutingRuleTeam)
    from .routing_helpers import rule

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


def test_dry_run_bad_input_and_roles(tenant, other_tenant, org):
    people, clients = org
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


def test_rejection_reasons_are_the_tenants_active_taxonomy(tenant, other_tenant, org):
    from routing.models import RejectionReason

    RejectionReason.objects.unscoped().create(tenant=other_tenant, code="theirs", label="Theirs")
    RejectionReason.objects.unscoped().filter(tenant=tenant, code="spam").update(is_active=False)
    rows = org[1]["sdr"].get("/api/v1/routing/rejection-reasons/").json()
    codes = [r["code"] for r in rows]
    assert "not_icp" in codes and "spam" not in codes and "theirs" not in codes
    assert {"code": "not_now", "label": "Timing: not now", "nurture": True} in rows


def test_another_tenants_lead_is_a_404_on_every_endpoint(tenant, other_tenant, org):
    people, clients = org
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


def test_read_only_keys_cannot_reassign(tenant, org):
    mql = owned(tenant, org[0]["sdr"])
    _key, raw = api_key_for(tenant, scopes=[ApiScope.LEADS_READ])
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert key.get(url(mql, "assignments")).status_code == 200
    assert key.post(url(mql, "reassign"), {"reason": "x"}, format="json").status_code == 403


def test_lead_list_with_assignments_and_teams_stays_bounded(tenant, org, api_client, django_assert_max_num_queries):
    people, _ = org
    from leadmgmt.tenancy.models import Team

    east = Team.objects.unscoped().get(tenant=tenant, name="East")
    for i in range(30):
        owned(tenant, people["sdr" if i % 2 else "sdr2"], team_=east)
    with django_assert_max_num_queries(5):
        rows = api_client.get("/api/v1/leads/", {"page_size": 50}).json()["results"]
    assert len(rows) == 30
    assert all(r["team"]["name"] == "East" and r["latest_assignment"]["trigger"] == "capture" for r in rows)
