"""Nurture API: sequences, a lead's enrolments, manual enrolment and stop; scopes, visibility, tenants."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from leadmgmt.tenancy.models import ApiScope, Role
from nurture.models import Enrollment
from tests.conftest import member
from tests.support.factories import api_key_for
from tests.support.nurture import NurtureLeadFactory, sequence_with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_demo(tenant, nurture_settings):
    return sequence_with_steps(tenant=tenant, steps=2, name="Post-demo", kind="post_demo", auto_enroll=False)


def test_sequences_list_is_the_tenants_own(api_client, tenant, other_tenant, post_demo, django_assert_max_num_queries):
    sequence_with_steps(tenant=other_tenant, steps=1, name="Globex only")
    with django_assert_max_num_queries(6):
        response = api_client.get("/api/v1/nurture/sequences/")
    assert response.status_code == 200
    assert [(s["name"], s["steps"]) for s in response.json()["results"]] == [("Post-demo", 2)]


def test_enrol_by_hand_then_again_then_stop(api_client, tenant, post_demo):
    lead = NurtureLeadFactory(tenant=tenant, lead_class="high_fit")
    url = f"/api/v1/leads/{lead.pk}/enrollments/"
    created = api_client.post(url, {"sequence": post_demo.pk}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["sequence"]["name"] == "Post-demo" and body["status"] == "active" and body["automatic"] is False
    assert body["next_step"]["position"] == 1 and body["next_due_at"]
    again = api_client.post(url, {"sequence": post_demo.pk}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    listed = api_client.get(url)
    assert [e["id"] for e in listed.json()] == [body["id"]]
    stopped = api_client.post(f"{url}{body['id']}/stop/", {"note": "Bought already"}, format="json")
    assert stopped.status_code == 200
    assert (stopped.json()["status"], stopped.json()["exit_reason"], stopped.json()["exit_note"]) == (
        "exited", "manual", "Bought already")


def test_bad_enrolments_are_400_with_field_messages_and_write_nothing(api_client, tenant, other_tenant, post_demo):
    lead = NurtureLeadFactory(tenant=tenant, marketing_consent=False)
    url = f"/api/v1/leads/{lead.pk}/enrollments/"
    theirs = sequence_with_steps(tenant=other_tenant, steps=1, name="Globex seq")
    for payload, field in (({}, "sequence"), ({"sequence": "x"}, "sequence"), ({"sequence": theirs.pk}, "sequence"),
                           ({"sequence": post_demo.pk}, "lead")):
        response = api_client.post(url, payload, format="json")
        assert response.status_code == 400, (payload, response.content)
        assert field in response.json()["errors"], response.json()
    assert not Enrollment.objects.unscoped().exists()


def test_other_tenants_and_other_reps_leads_are_404(tenant, other_tenant, post_demo, client_for):
    theirs = NurtureLeadFactory(tenant=other_tenant)
    _key, raw = api_key_for(tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"/api/v1/leads/{theirs.pk}/enrollments/").status_code == 404
    assert client.post(f"/api/v1/leads/{theirs.pk}/enrollments/", {"sequence": post_demo.pk},
                       format="json").status_code == 404
    rep, other_rep = member(tenant, Role.SDR), member(tenant, Role.SDR)
    owned_by_other = NurtureLeadFactory(tenant=tenant, owner=other_rep)
    assert client_for(rep).get(f"/api/v1/leads/{owned_by_other.pk}/enrollments/").status_code == 404
    mine = NurtureLeadFactory(tenant=tenant, owner=rep)
    assert client_for(rep).post(f"/api/v1/leads/{mine.pk}/enrollments/", {"sequence": post_demo.pk},
                                format="json").status_code == 201
    assert not Enrollment.objects.unscoped().filter(lead__in=[theirs, owned_by_other]).exists()


def test_a_read_only_key_cannot_enrol(tenant, post_demo):
    lead = NurtureLeadFactory(tenant=tenant)
    _key, raw = api_key_for(tenant, scopes=[ApiScope.LEADS_READ])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"/api/v1/leads/{lead.pk}/enrollments/").status_code == 200
    assert client.post(f"/api/v1/leads/{lead.pk}/enrollments/", {"sequence": post_demo.pk},
                       format="json").status_code == 403
    assert not Enrollment.objects.unscoped().exists()
