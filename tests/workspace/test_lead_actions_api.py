"""The rep's actions over the API: accept, reject, qualify; who may act, stale actions, field errors."""
from __future__ import annotations

import pytest

from leads.models import LeadStatus, Opportunity
from tests.support.lead_api import BANT, errors, owned, url
from tests.support.routing import fresh

pytestmark = pytest.mark.django_db


def test_owner_accepts_and_the_answer_is_the_lead(tenant, api_org):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    response = clients["sdr"].post(url(mql, "accept"), {"expected_owner_id": people["sdr"].pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stage"] == "sal" and body["accepted_at"] and body["sla_due_at"] is None
    assert body["latest_assignment"]["owner"]["id"] == people["sdr"].pk


def test_reps_act_only_on_their_own_leads_managers_on_their_teams(tenant, api_org):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    west = owned(tenant, people["west_sdr"])
    assert clients["sdr2"].post(url(mql, "accept"), {}, format="json").status_code == 404, "not visible to her"
    assert clients["ops"].post(url(mql, "reject"), {"reason": "spam"}, format="json").status_code == 403
    assert clients["manager"].post(url(west, "reject"), {"reason": "spam"}, format="json").status_code == 404
    response = clients["manager"].post(url(mql, "reject"), {"reason": "no_budget"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"


def test_an_api_key_cannot_accept_reject_or_qualify(tenant, api_org, api_client):
    mql = owned(tenant, api_org[0]["sdr"])
    for action, body in (("accept", {}), ("reject", {"reason": "spam"}), ("qualify", BANT)):
        assert api_client.post(url(mql, action), body, format="json").status_code == 403


def test_reject_needs_a_taxonomy_reason(tenant, api_org):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    missing = clients["sdr"].post(url(mql, "reject"), {}, format="json")
    assert missing.status_code == 400 and "reason" in errors(missing)
    unknown = clients["sdr"].post(url(mql, "reject"), {"reason": "meh", "note": "x"}, format="json")
    assert unknown.status_code == 400 and "not_icp" in errors(unknown)["reason"][0]
    assert fresh(mql).status == LeadStatus.NEW
    not_now = clients["sdr"].post(url(mql, "reject"), {"reason": "not_now"}, format="json")
    assert not_now.json()["status"] == "recycled" and not_now.json()["owner"] is None


def test_qualify_hands_off_to_an_ae_and_bad_bant_is_field_errors(tenant, api_org):
    people, clients = api_org
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


def test_a_stale_action_is_a_400_on_owner(tenant, api_org):
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    response = clients["manager"].post(url(mql, "reject"), {"reason": "spam", "expected_owner_id": people["sdr2"].pk},
                                       format="json")
    assert response.status_code == 400 and "reassigned meanwhile" in errors(response)["owner"][0]
