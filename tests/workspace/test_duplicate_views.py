"""The merge review pages (/manager/duplicates/…) and the lead page's duplicates card and undo."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadmgmt.tenancy.models import Role
from leads.models import DuplicatePair, DuplicateStatus, LeadStatus
from leads.services.duplicates import duplicate_pairs_detect
from tests.support.factories import LeadFactory
from tests.support.routing import fresh
from tests.support.workspace import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(tenant, org):
    rich = LeadFactory(tenant=tenant, owner=org["rep"], first_name="Ada", last_name="Lovelace",
                       phone="+442071234567", job_title="CTO", email="ada@analytical.example")
    thin = LeadFactory(tenant=tenant, owner=org["rep2"], first_name="Ada", last_name="Lovelace",
                       phone="+442071234567", industry="Software", email="ada.l@gmail.com")
    duplicate_pairs_detect(tenant=tenant)
    return DuplicatePair.objects.for_tenant(tenant).get(), rich, thin


def test_the_list_shows_the_pairs_in_sight_in_a_fixed_number_of_queries(tenant, org, pair, signed_in):
    client = signed_in(org["manager"], tenant)
    page = client.get("/manager/duplicates/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "ada.l@gmail.com" in body and "Same phone number" in body and 'aria-current="page"' in body
    with CaptureQueriesContext(connection) as one:
        client.get("/manager/duplicates/")
    for n in range(3):
        LeadFactory.create_batch(2, tenant=tenant, owner=org["rep"], phone=f"+1415555010{n}")
    duplicate_pairs_detect(tenant=tenant)
    with CaptureQueriesContext(connection) as four:
        assert client.get("/manager/duplicates/").content.decode().count("data-pair-id=") == 4
    assert len(four) == len(one)
    assert "ada.l@gmail.com" not in client.get("/manager/duplicates/", {"tier": "medium"}).content.decode()


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MARKETING_OPS])
def test_reps_and_marketing_ops_cannot_review(tenant, org, pair, signed_in, role):
    member = person(tenant, role=role, username=f"{role}-pages@acme.test")
    client = signed_in(member, tenant)
    the_pair = pair[0]
    assert client.get("/manager/duplicates/").status_code == 403
    assert client.get(f"/manager/duplicates/{the_pair.pk}/").status_code == 403
    assert client.post(f"/manager/duplicates/{the_pair.pk}/merge/").status_code == 403
    assert fresh(the_pair).status == DuplicateStatus.OPEN


def test_another_tenants_pair_is_a_404(tenant, other_tenant, org, pair, signed_in):
    theirs = [LeadFactory(tenant=other_tenant, phone="+14155557777") for _ in range(2)]
    duplicate_pairs_detect(tenant=other_tenant, lead_ids=[lead.pk for lead in theirs])
    foreign = DuplicatePair.objects.for_tenant(other_tenant).get()
    client = signed_in(org["manager"], tenant)
    assert client.get(f"/manager/duplicates/{foreign.pk}/").status_code == 404
    assert client.post(f"/manager/duplicates/{foreign.pk}/dismiss/").status_code == 404
    assert fresh(foreign).status == DuplicateStatus.OPEN


def test_review_merge_then_undo_from_the_lead_timeline(tenant, org, pair, signed_in):
    the_pair, rich, thin = pair
    client = signed_in(org["manager"], tenant)
    page = client.get(f"/manager/duplicates/{the_pair.pk}/").content.decode()
    assert 'name="pick_industry"' in page and 'name="survivor"' in page
    # The lead page tells a reviewer; the rep who owns it does not get the review card.
    assert 'data-testid="duplicates"' in client.get(f"/leads/{rich.pk}/").content.decode()
    assert 'data-testid="duplicates"' not in signed_in(org["rep"], tenant).get(f"/leads/{rich.pk}/").content.decode()

    keep_rich_side = "lead" if the_pair.lead_id == rich.pk else "other"
    thin_side = "other" if keep_rich_side == "lead" else "lead"
    merged = client.post(f"/manager/duplicates/{the_pair.pk}/merge/",
                         {"survivor": str(rich.pk), "pick_industry": thin_side, "pick_job_title": keep_rich_side})
    assert merged.status_code == 302 and merged["Location"] == f"/leads/{rich.pk}/"
    assert (fresh(rich).industry, fresh(thin).status) == ("Software", LeadStatus.ARCHIVED)
    lead_page = client.get(f"/leads/{rich.pk}/").content.decode()
    assert "Merged Ada Lovelace" in lead_page and "Undo this merge" in lead_page
    assert "A duplicate lead was merged into this one" in lead_page

    undone = client.post(f"/manager/duplicates/{the_pair.pk}/undo/", {"next": f"/leads/{rich.pk}/"})
    assert undone.status_code == 302 and undone["Location"] == f"/leads/{rich.pk}/"
    assert (fresh(rich).industry, fresh(thin).status) == ("", LeadStatus.NEW)
    assert "Undo this merge" not in client.get(f"/leads/{rich.pk}/").content.decode()
    # An off-site `next` is not followed.
    client.post(f"/manager/duplicates/{the_pair.pk}/merge/", {"survivor": str(rich.pk)})
    away = client.post(f"/manager/duplicates/{the_pair.pk}/undo/", {"next": "https://evil.example/"})
    assert away["Location"] == f"/leads/{rich.pk}/"


def test_a_refused_merge_shows_why_and_changes_nothing(tenant, org, pair, signed_in):
    the_pair, rich, thin = pair
    client = signed_in(org["manager"], tenant)
    from leads.models import Lead

    Lead.objects.unscoped().filter(pk=thin.pk).update(email="")
    refused = client.post(f"/manager/duplicates/{the_pair.pk}/merge/", {"survivor": str(thin.pk)})
    assert refused.status_code == 400
    assert "Keep the lead with the email address" in refused.content.decode()
    assert fresh(the_pair).status == DuplicateStatus.OPEN and fresh(rich).status != LeadStatus.ARCHIVED


def test_dismiss_goes_back_to_the_list(tenant, org, pair, signed_in):
    the_pair = pair[0]
    client = signed_in(org["manager"], tenant)
    response = client.post(f"/manager/duplicates/{the_pair.pk}/dismiss/", follow=True)
    assert "will not be suggested as duplicates again" in response.content.decode()
    assert fresh(the_pair).status == DuplicateStatus.DISMISSED
    assert "data-pair-id=" not in client.get("/manager/duplicates/").content.decode()
