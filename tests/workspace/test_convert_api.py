"""`POST /api/v1/leads/{id}/convert/`: the owner (or a manager/admin) converts a lead to an opportunity."""
from __future__ import annotations

import pytest

from leads.models import LeadStatus, Opportunity
from tests.support.lead_api import errors, owned, url
from tests.support.routing import fresh, lead

pytestmark = pytest.mark.django_db


def test_the_owner_converts_and_again_gets_the_same_opportunity(tenant, api_org):  # noqa: F811
    people, clients = api_org
    mql = owned(tenant, people["sdr"], company="Initech")
    response = clients["sdr"].post(url(mql, "convert"), {"name": "Initech pilot", "stage": "demo",
                                                         "expected_owner_id": people["sdr"].pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["opportunity"]["name"], body["opportunity"]["stage"]) == ("Initech pilot", "demo")
    assert body["opportunity"]["owner"]["id"] == people["sdr"].pk
    assert body["lead"]["status"] == LeadStatus.CONVERTED and body["lead"]["stage"] == "opportunity"
    again = clients["sdr"].post(url(mql, "convert"), {}, format="json")
    assert again.status_code == 200 and again.json()["opportunity"]["id"] == body["opportunity"]["id"]
    assert Opportunity.objects.unscoped().filter(lead=mql).count() == 1


def test_who_may_convert_and_bad_input(tenant, other_tenant, api_org, api_client):  # noqa: F811
    people, clients = api_org
    mql = owned(tenant, people["sdr"])
    assert clients["sdr2"].post(url(mql, "convert"), {}, format="json").status_code == 404  # not theirs to see
    assert clients["ops"].post(url(mql, "convert"), {}, format="json").status_code == 403
    assert api_client.post(url(mql, "convert"), {}, format="json").status_code == 403
    bad_stage = clients["sdr"].post(url(mql, "convert"), {"stage": "won"}, format="json")
    assert bad_stage.status_code == 400 and "stage" in errors(bad_stage)
    stale = clients["sdr"].post(url(mql, "convert"), {"expected_owner_id": people["sdr2"].pk}, format="json")
    assert stale.status_code == 400 and "owner" in errors(stale)
    unassigned = lead(tenant)
    refused = clients["manager"].post(url(unassigned, "convert"), {}, format="json")
    assert refused.status_code == 400
    theirs = lead(other_tenant)
    assert clients["admin"].post(url(theirs, "convert"), {}, format="json").status_code == 404
    assert fresh(mql).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()
    manager = clients["manager"].post(url(mql, "convert"), {}, format="json")
    assert manager.status_code == 200 and manager.json()["opportunity"]["owner"]["id"] == people["sdr"].pk
