"""Hot leads in the workspace: the "Hot lead" badge on every page that shows a lead, hot leads on top of
the rep's queue, and the manager's Hot list (scope, roles, order, pagination, row actions, query counts).

Real PostgreSQL; pages through Django's test client."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStatus
from routing.models import Assignment, SlaClock
from tests.support.factories import AccountFactory, LeadFactory, TeamFactory
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db

BADGE = "data-hot-badge"
HOT = {"is_hot": True, "score": 92, "band": "sql"}


def lead_ids(response) -> list[str]:
    return re.findall(r'data-lead-id="([0-9a-f-]+)"', response.content.decode())


def badged(response) -> set[str]:
    """Ids of the rows (data-lead-id) that carry the hot badge."""
    html = response.content.decode()
    rows = re.findall(r'<tr data-lead-id="([0-9a-f-]+)"(.*?)</tr>', html, flags=re.S)
    return {lead_id for lead_id, body in rows if BADGE in body}


def hot_owned(tenant, owner, **fields) -> Lead:
    return owned_lead(tenant, owner, **{**HOT, **fields})


@pytest.fixture
def world(tenant, other_tenant, org):
    """`org` (SDRs team: manager, rep, rep2) plus another team of the tenant with its own SDR, an admin,
    and another tenant's manager and hot lead."""
    outbound = TeamFactory(tenant=tenant, name="Outbound")
    olga = person(tenant, team=outbound, username="olga@acme.test")
    admin = person(tenant, role=Role.ADMIN, username="admin@acme.test")
    globex_team = TeamFactory(tenant=other_tenant, name="Globex team")
    globex_boss = person(other_tenant, role=Role.MANAGER, team=globex_team, username="boss@globex.test")
    globex_rep = person(other_tenant, team=globex_team, username="rep@globex.test")
    return {**org, "outbound": outbound, "olga": olga, "admin": admin, "globex_boss": globex_boss,
            "globex_hot": hot_owned(other_tenant, globex_rep, first_name="Globex", last_name="Secret")}


# --- the badge ------------------------------------------------------------------------------------------


def test_my_queue_badges_hot_leads_only_and_puts_them_on_top(tenant, org, signed_in):
    rep = org["rep"]
    urgent = owned_lead(tenant, rep, due_in=timedelta(minutes=2), score=60)
    hot_later = hot_owned(tenant, rep, due_in=timedelta(hours=3))
    hot_sooner = hot_owned(tenant, rep, due_in=timedelta(minutes=30))
    no_clock = owned_lead(tenant, rep, score=99)
    Lead.objects.unscoped().filter(pk=no_clock.pk).update(sla_due_at=None)

    response = signed_in(rep, tenant).get("/queue/")

    assert lead_ids(response) == [str(x.pk) for x in (hot_sooner, hot_later, urgent, no_clock)]
    assert badged(response) == {str(hot_sooner.pk), str(hot_later.pk)}
    assert ">Hot lead</span>" in response.content.decode(), "said in words, not colour only"


def test_queue_order_is_one_query_for_the_rows(tenant, org, signed_in, django_assert_max_num_queries):
    rep = org["rep"]
    for index in range(12):
        (hot_owned if index % 3 == 0 else owned_lead)(tenant, rep, due_in=timedelta(minutes=index + 1))
    client = signed_in(rep, tenant)
    client.get("/queue/")  # warm the session and caches
    with django_assert_max_num_queries(12):
        response = client.get("/queue/")
    assert len(badged(response)) == 4


def test_the_lead_page_header_and_the_accounts_other_leads_show_the_badge(tenant, org, signed_in):
    rep = org["rep"]
    account = AccountFactory(tenant=tenant, domain="initech.example", name="Initech")
    subject = hot_owned(tenant, rep, account=account, first_name="Peter")
    hot_owned(tenant, org["rep2"], account=account, first_name="Samir")  # a colleague's hot lead
    cold_one = owned_lead(tenant, rep, account=account, first_name="Milton", score=10, band="cold")

    html = signed_in(rep, tenant).get(f"/leads/{subject.pk}/").content.decode()
    header, _, rest = html.partition('id="contact-h"')
    assert BADGE in header, "the page header says the lead is hot"
    account_section = rest[rest.index('id="account-h"'):]
    items = re.findall(r"<li>(.*?)</li>", account_section, flags=re.S)
    hot_items = [item for item in items if BADGE in item]
    assert len(items) == 2 and len(hot_items) == 1 and "Samir" in hot_items[0]

    plain = signed_in(rep, tenant).get(f"/leads/{cold_one.pk}/").content.decode()
    assert BADGE not in plain.partition('id="contact-h"')[0]


def test_manager_lists_show_the_badge_on_hot_rows(tenant, world, signed_in):
    boss, rep = world["manager"], world["rep"]
    queue_hot, queue_plain = hot_owned(tenant, rep), owned_lead(tenant, rep)
    unassigned_hot = LeadFactory(tenant=tenant, **HOT)
    unassigned_plain = LeadFactory(tenant=tenant, score=30, band="warm")
    breached_hot = hot_owned(tenant, rep, due_in=timedelta(minutes=-30))
    SlaClock.objects.unscoped().filter(lead=breached_hot, stopped_at__isnull=True).update(
        breached_at=timezone.now() - timedelta(minutes=30))
    aging_hot = hot_owned(tenant, world["rep2"])
    Lead.objects.unscoped().filter(pk=aging_hot.pk).update(aging_flagged_at=timezone.now())
    client = signed_in(boss, tenant)

    queue = client.get("/manager/")
    assert str(queue_hot.pk) in badged(queue) and str(queue_plain.pk) not in badged(queue)
    unassigned = client.get("/manager/unassigned/")
    assert badged(unassigned) == {str(unassigned_hot.pk)}
    assert str(unassigned_plain.pk) in lead_ids(unassigned)
    assert badged(client.get("/manager/escalations/")) == {str(breached_hot.pk)}
    assert badged(client.get("/manager/aging/")) == {str(aging_hot.pk)}


# --- the Hot list -------------------------------------------------------------------------------------------


def test_the_hot_list_shows_the_scopes_open_hot_leads_owned_or_unassigned(tenant, world, signed_in):
    mine = hot_owned(tenant, world["rep"], score=80)
    hotter = hot_owned(tenant, world["rep2"], score=97)
    unassigned = LeadFactory(tenant=tenant, **HOT, team=world["team"])
    no_team_yet = LeadFactory(tenant=tenant, **{**HOT, "score": 76})
    other_team = hot_owned(tenant, world["olga"])
    not_hot = owned_lead(tenant, world["rep"], score=70)
    closed = hot_owned(tenant, world["rep"])
    Lead.objects.unscoped().filter(pk=closed.pk).update(status=LeadStatus.CONVERTED)

    response = signed_in(world["manager"], tenant).get("/manager/hot/")

    assert response.status_code == 200
    shown = lead_ids(response)
    assert set(shown) == {str(x.pk) for x in (mine, hotter, unassigned, no_team_yet)}
    assert shown[0] == str(hotter.pk) and shown[-1] == str(no_team_yet.pk), "the hottest first"
    assert str(other_team.pk) not in shown and str(not_hot.pk) not in shown and str(closed.pk) not in shown
    assert str(world["globex_hot"].pk) not in response.content.decode()
    assert badged(response) == set(shown)
    html = response.content.decode()
    assert 'aria-current="page" class="active">Hot leads</a>' in html
    assert "Unassigned</span>" in html, "an unassigned hot lead says so in the owner column"


def test_equally_hot_leads_come_most_urgent_sla_first(tenant, world, signed_in):
    later = hot_owned(tenant, world["rep"], due_in=timedelta(hours=2))
    sooner = hot_owned(tenant, world["rep2"], due_in=timedelta(minutes=3))
    assert lead_ids(signed_in(world["manager"], tenant).get("/manager/hot/")) == [str(sooner.pk), str(later.pk)]


def test_an_admin_sees_every_team_but_not_another_tenant(tenant, world, signed_in):
    ours = {hot_owned(tenant, world["rep"]).pk, hot_owned(tenant, world["olga"]).pk,
            LeadFactory(tenant=tenant, **HOT).pk}
    shown = lead_ids(signed_in(world["admin"], tenant).get("/manager/hot/"))
    assert set(shown) == {str(pk) for pk in ours}


def test_another_tenants_manager_sees_only_their_own(tenant, world, signed_in, other_tenant):
    hot_owned(tenant, world["rep"])
    shown = lead_ids(signed_in(world["globex_boss"], other_tenant).get("/manager/hot/"))
    assert shown == [str(world["globex_hot"].pk)]


@pytest.mark.parametrize("who", ["rep", "olga"])
def test_reps_get_403_on_the_hot_list(tenant, world, signed_in, who):
    assert signed_in(world[who], tenant).get("/manager/hot/").status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    response = client.get("/manager/hot/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_hot_list_is_paginated_and_its_queries_do_not_grow_with_the_leads(
        tenant, world, signed_in, django_assert_max_num_queries):
    client = signed_in(world["manager"], tenant)
    for _ in range(3):
        hot_owned(tenant, world["rep"])
    client.get("/manager/hot/")
    with django_assert_max_num_queries(12):
        small = client.get("/manager/hot/")
    for index in range(25):
        hot_owned(tenant, world["rep2"] if index % 2 else world["rep"], score=76 + index % 20)
    with django_assert_max_num_queries(12):
        big = client.get("/manager/hot/")
    assert len(lead_ids(small)) == 3 and len(lead_ids(big)) == 25
    assert "Page 1 of 2" in big.content.decode()
    assert len(lead_ids(client.get("/manager/hot/", {"page": 2}))) == 3


def test_one_click_reassign_from_the_hot_list_returns_the_row_and_keeps_the_reason(tenant, world, signed_in):
    subject = hot_owned(tenant, world["rep"])
    response = signed_in(world["manager"], tenant).post(
        f"/manager/leads/{subject.pk}/reassign/row/",
        {"to_user": world["rep2"].pk, "expected_owner_id": world["rep"].pk, "row": "hot", "next": "/manager/hot/"},
        HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert lead_ids(response) == [str(subject.pk)] and BADGE in response.content.decode()
    assert Lead.objects.unscoped().get(pk=subject.pk).owner_id == world["rep2"].pk
    latest = Assignment.objects.unscoped().filter(lead=subject).order_by("-at", "-id").first()
    assert latest.reason == "Reassigned from the Hot list"


def test_an_admin_can_reassign_an_owned_hot_lead_from_the_list(tenant, world, signed_in):
    subject = hot_owned(tenant, world["olga"])
    response = signed_in(world["admin"], tenant).post(
        f"/manager/leads/{subject.pk}/reassign/row/",
        {"to_user": world["rep"].pk, "expected_owner_id": world["olga"].pk, "row": "hot", "next": "/manager/hot/"})

    assert response.status_code == 302 and response["Location"] == "/manager/hot/"
    assert Lead.objects.unscoped().get(pk=subject.pk).owner_id == world["rep"].pk


def test_a_manager_cannot_act_on_another_teams_or_tenants_hot_lead(tenant, world, signed_in):
    theirs = hot_owned(tenant, world["olga"])
    client = signed_in(world["manager"], tenant)
    for subject in (theirs, world["globex_hot"]):
        response = client.post(f"/manager/leads/{subject.pk}/reassign/row/",
                               {"to_user": world["rep"].pk, "expected_owner_id": subject.owner_id, "row": "hot"})
        assert response.status_code == 404
    assert Lead.objects.unscoped().get(pk=theirs.pk).owner_id == world["olga"].pk
