"""`/api/v1/duplicates/`: the merge review queue for managers and admins, within their sight and their tenant."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadmgmt.tenancy.models import Role
from leads.models import DuplicatePair, DuplicateStatus, LeadStatus
from leads.services.duplicates import duplicate_pairs_detect
from tests.support.factories import LeadFactory, TeamFactory, api_key_for
from tests.support.routing import fresh
from tests.support.workspace import person

pytestmark = pytest.mark.django_db

API = "/api/v1/duplicates/"


@pytest.fixture
def pairs(tenant, org):
    """Three pairs in the manager's team (one high, two medium) and one between another team's leads."""
    rep, rep2 = org["rep"], org["rep2"]
    made = []
    for n, (tier_name, first_owner, second_owner) in enumerate([("same", rep, rep2), ("", rep, rep), ("", rep2, None)]):
        phone = f"+1415555{n:04d}"
        made.append((LeadFactory(tenant=tenant, owner=first_owner, first_name="Ada", last_name="Lovelace",
                                 phone=phone, job_title="CTO"),
                     LeadFactory(tenant=tenant, owner=second_owner, phone=phone,
                                 first_name="Ada" if tier_name else "Grace", last_name="Lovelace" if tier_name else "Hopper",
                                 industry="Software")))
    other_team = TeamFactory(tenant=tenant, name="AEs")
    stranger = person(tenant, team=other_team, username="ae@acme.test", role=Role.AE)
    made.append((LeadFactory(tenant=tenant, owner=stranger, phone="+14155559999"),
                 LeadFactory(tenant=tenant, owner=stranger, phone="+14155559999")))
    duplicate_pairs_detect(tenant=tenant)
    return made


def test_managers_see_the_pairs_of_their_sight_newest_first_in_a_fixed_number_of_queries(tenant, org, pairs,
                                                                                        signed_in):
    client = signed_in(org["manager"], tenant)
    client.get(API)
    with CaptureQueriesContext(connection) as queries:
        body = client.get(API).json()
    assert body["count"] == 3  # the other team's pair is out of sight
    fewer = len(queries)
    assert {row["tier"] for row in body["results"]} == {"high", "medium"}
    assert {row["lead"]["phone"] for row in body["results"]} == {"+14155550000", "+14155550001", "+14155550002"}
    assert client.get(API, {"tier": "high"}).json()["count"] == 1
    LeadFactory.create_batch(2, tenant=tenant, owner=org["rep"], phone="+14155550003")
    duplicate_pairs_detect(tenant=tenant)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(API).json()["count"] == 4
    assert len(queries) == fewer  # one more pair, no more queries

    admin = person(tenant, role=Role.ADMIN, username="admin@acme.test")
    assert signed_in(admin, tenant).get(API).json()["count"] == 5


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MARKETING_OPS])
def test_other_roles_and_api_keys_are_refused(tenant, org, pairs, signed_in, client, role):
    member = person(tenant, role=role, username=f"{role}-reviewer@acme.test")
    assert signed_in(member, tenant).get(API).status_code == 403
    pair = DuplicatePair.objects.for_tenant(tenant).first()
    assert signed_in(member, tenant).post(f"{API}{pair.pk}/dismiss/").status_code == 403
    _key, raw = api_key_for(tenant)
    assert client.get(API, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403


def test_another_tenants_pair_is_not_there(tenant, other_tenant, org, pairs, signed_in):
    theirs = [LeadFactory(tenant=other_tenant, phone="+14155558888") for _ in range(2)]
    duplicate_pairs_detect(tenant=other_tenant, lead_ids=[lead.pk for lead in theirs])
    pair = DuplicatePair.objects.for_tenant(other_tenant).get()
    client = signed_in(org["manager"], tenant)
    assert client.get(f"{API}{pair.pk}/").status_code == 404
    assert client.post(f"{API}{pair.pk}/merge/", {}, content_type="application/json").status_code == 404
    assert client.post(f"{API}{pair.pk}/dismiss/").status_code == 404
    assert fresh(pair).status == DuplicateStatus.OPEN


def test_side_by_side_merge_and_undo_through_the_api(tenant, org, pairs, signed_in):
    rich, thin = pairs[0]
    pair = DuplicatePair.objects.for_tenant(tenant).get(lead_id__in=[rich.pk, thin.pk])
    client = signed_in(org["manager"], tenant)
    detail = client.get(f"{API}{pair.pk}/").json()
    assert detail["reason"] == "phone" and detail["tier"] == "high"
    compared = {row["field"]: row for row in detail["fields_compared"]}
    lead_is_rich = detail["lead"]["id"] == str(rich.pk)
    assert compared["industry"]["default"] == ("lead" if not lead_is_rich else "other")  # the filled one
    assert compared["job_title"]["default"] == ("lead" if lead_is_rich else "other")

    refused = client.post(f"{API}{pair.pk}/merge/", {"values": {"industry": "mine"}}, content_type="application/json")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["values.industry"]
    merged = client.post(f"{API}{pair.pk}/merge/", {"survivor_id": str(rich.pk)}, content_type="application/json")
    assert merged.status_code == 200 and merged.json()["status"] == "merged"
    assert (fresh(rich).industry, fresh(thin).status) == ("Software", LeadStatus.ARCHIVED)
    again = client.post(f"{API}{pair.pk}/merge/", {}, content_type="application/json")
    assert again.status_code == 400 and "already merged" in again.json()["errors"]["pair"][0]
    assert client.get(API, {"status": "merged"}).json()["count"] == 1
    assert client.get(API, {"lead": str(rich.pk), "status": "all"}).json()["count"] == 1

    undone = client.post(f"{API}{pair.pk}/undo/")
    assert undone.status_code == 200 and undone.json()["status"] == "open"
    assert (fresh(rich).industry, fresh(thin).status) == ("", LeadStatus.NEW)


def test_dismiss_closes_the_pair_once(tenant, org, pairs, signed_in):
    first, second = pairs[1]  # medium, both the manager's team's
    pair = DuplicatePair.objects.for_tenant(tenant).get(lead_id__in=[first.pk, second.pk])
    client = signed_in(org["manager"], tenant)
    assert client.post(f"{API}{pair.pk}/dismiss/").json()["status"] == "dismissed"
    assert client.post(f"{API}{pair.pk}/dismiss/").status_code == 400
    assert client.get(API).json()["count"] == 2
    assert client.get(API, {"status": "bogus"}).status_code == 400


def test_a_filter_sent_without_a_value_is_a_field_error(tenant, org, pairs, signed_in):
    client = signed_in(org["manager"], tenant)
    for name in ("status", "tier", "lead"):
        response = client.get(API, {name: ""})
        assert response.status_code == 400 and name in response.json()["errors"], name
