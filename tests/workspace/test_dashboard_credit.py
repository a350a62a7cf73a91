"""Credit where it happened: dashboards and per-rep breakdowns follow who owned a lead during the period (the
assignment history) and who acted on it (contact, rejection, qualification, acceptance), not the owner now;
and each rep's own numbers page (`/dashboard/me/`, a manager's `/dashboard/reps/<membership id>/`)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Activity, Lead
from routing.defaults import routing_defaults_create
from routing.models import SlaClock, Trigger
from routing.services.assign import lead_assign, leads_reassign_bulk
from tests.support.factories import LeadFactory, TeamFactory
from tests.support.workspace import person
from workspace.dashboard_breakdowns import rejections_by_rep, rep_breakdown
from workspace.dashboards import (
    DateRange,
    Filters,
    lead_volume_by_source,
    rejection_reasons,
    response_time,
)
from workspace.services.lifecycle import lead_accept, lead_qualify, lead_reject

pytestmark = pytest.mark.django_db

BANT = {"budget": "40k", "authority": "VP Sales", "need": "Routing", "timeline": "Q3"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def floor(tenant):
    """Team East (manager Mia; SDRs Sam and Dana; AE Ava), team West (SDR Will), an admin; the routing defaults."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    people = {
        "mia": person(tenant, role=Role.MANAGER, team=east, username="mia@acme.test"),
        "sam": person(tenant, team=east, username="sam@acme.test"),
        "dana": person(tenant, team=east, username="dana@acme.test"),
        "ava": person(tenant, role=Role.AE, team=east, username="ava@acme.test"),
        "will": person(tenant, team=west, username="will@acme.test"),
        "admin": person(tenant, role=Role.ADMIN, username="admin@acme.test"),
    }
    east.manager = people["mia"]
    east.save(update_fields=["manager"])
    return people


def period(tenant) -> DateRange:
    return DateRange.default(tz=tenant.timezone or "UTC")


def assigned(tenant, owner, *, hours_ago: float = 48, **fields) -> Lead:
    """A lead created and assigned to `owner` `hours_ago`; its first-contact clock started then, due an hour later
    (pinned: the test does not depend on the default SLA policies)."""
    at = timezone.now() - dt.timedelta(hours=hours_ago)
    lead = LeadFactory(tenant=tenant, created_at=at, stage="mql", band="mql", source="web_form", **fields)
    lead_assign(lead=lead, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE, now=at)
    SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).update(due_at=at + dt.timedelta(hours=1))
    return Lead.objects.unscoped().get(pk=lead.pk)


def contacted(lead: Lead, by, *, minutes: int) -> None:
    """`by` logged the first call `minutes` after the lead came in (the activity and the lead's first contact)."""
    at = lead.created_at + dt.timedelta(minutes=minutes)
    Activity.objects.unscoped().create(tenant_id=lead.tenant_id, lead=lead, kind="call", outcome="connected",
                                       actor=by, occurred_at=at)
    Lead.objects.unscoped().filter(pk=lead.pk).update(first_contacted_at=at, status="contacted")
    SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).update(stopped_at=at,
                                                                                 stop_reason="first_contact")


def breached(lead: Lead) -> None:
    """The SLA Agent marked the lead's running first-contact clock as breached."""
    clock = SlaClock.objects.unscoped().get(lead=lead, stopped_at__isnull=True)
    SlaClock.objects.unscoped().filter(pk=clock.pk).update(breached_at=clock.due_at)


def row(rows, user):
    found = [r for r in rows if r.key == str(user.pk)]
    assert len(found) <= 1
    return found[0] if found else None


# --- credit in the dashboards' selectors ----------------------------------------------------------------


def test_after_a_bulk_move_the_old_rep_keeps_the_leads_they_were_assigned_and_their_breaches(tenant, floor):
    sam, dana = floor["sam"], floor["dana"]
    moved = [assigned(tenant, sam) for _ in range(2)]
    for lead in moved:
        breached(lead)
    worked = assigned(tenant, sam)
    contacted(worked, sam, minutes=4)
    leads_reassign_bulk(tenant=tenant, from_user=sam, to_user=dana, actor=Actor.for_user(floor["mia"]),
                        reason="Sam moved to outbound")
    assert set(Lead.objects.unscoped().filter(pk__in=[x.pk for x in moved]).values_list("owner_id", flat=True)) \
        == {dana.pk}

    rows = rep_breakdown(tenant=tenant, period=period(tenant))
    sam_row, dana_row = row(rows, sam), row(rows, dana)
    assert (sam_row.leads, sam_row.sla_breached, sam_row.contacted, sam_row.median_seconds) == (3, 2, 1, 240.0)
    assert sam_row.sla_met == 1
    # Dana got all three open leads (the contacted one too); their new clocks run from the move
    assert (dana_row.leads, dana_row.sla_breached, dana_row.contacted, dana_row.sla_running) == (3, 0, 0, 3)
    # the page's figures narrowed to Sam count his leads and his contact, not Dana's
    assert lead_volume_by_source(tenant=tenant, period=period(tenant), filters=Filters(owner_id=sam.pk)).total == 3
    assert lead_volume_by_source(tenant=tenant, period=period(tenant), filters=Filters(owner_id=dana.pk)).total == 3
    sams = response_time(tenant=tenant, period=period(tenant), filters=Filters(owner_id=sam.pk))
    assert (sams.leads, sams.contacted, sams.median_seconds) == (3, 1, 240.0)
    assert response_time(tenant=tenant, period=period(tenant), filters=Filters(owner_id=dana.pk)).contacted == 0


def test_an_sdrs_rejection_and_the_sqls_they_qualified_stay_theirs_after_the_ae_owns_the_lead(tenant, floor):
    sam, ava = floor["sam"], floor["ava"]
    rejected = assigned(tenant, sam)
    contacted(rejected, sam, minutes=2)
    lead_reject(lead=rejected, actor=Actor.for_user(sam), reason_code="no_budget")
    qualified = assigned(tenant, sam)
    contacted(qualified, sam, minutes=6)
    opportunity = lead_qualify(lead=Lead.objects.unscoped().get(pk=qualified.pk), actor=Actor.for_user(sam), **BANT)
    assert opportunity.owner_id == ava.pk
    lead_accept(lead=Lead.objects.unscoped().get(pk=qualified.pk), actor=Actor.for_user(ava))
    now_owned = Lead.objects.unscoped().get(pk=qualified.pk)
    assert (now_owned.owner_id, now_owned.status) == (ava.pk, "converted")
    assert Lead.objects.unscoped().get(pk=rejected.pk).owner_id is None

    rows = rep_breakdown(tenant=tenant, period=period(tenant))
    sam_row, ava_row = row(rows, sam), row(rows, ava)
    assert (sam_row.leads, sam_row.contacted, sam_row.rejected, sam_row.qualified) == (2, 2, 1, 1)
    assert (sam_row.reached[3], sam_row.converted, sam_row.accepted) == (1, 0, 0)
    assert (ava_row.leads, ava_row.contacted, ava_row.rejected, ava_row.qualified) == (1, 0, 0, 0)
    assert (ava_row.accepted, ava_row.converted) == (1, 1)
    reasons = rejections_by_rep(tenant=tenant, period=period(tenant))
    assert [(r.owner_id, r.code, r.rejected) for r in reasons] == [(sam.pk, "no_budget", 1)]
    by_sam = rejection_reasons(tenant=tenant, period=period(tenant), filters=Filters(owner_id=sam.pk))
    assert [(r.code, r.rejected) for r in by_sam] == [("no_budget", 1)]
    assert rejection_reasons(tenant=tenant, period=period(tenant), filters=Filters(owner_id=ava.pk)) == []


def test_a_first_contact_goes_to_the_rep_who_made_it_not_to_the_owner_now(tenant, floor):
    sam, dana = floor["sam"], floor["dana"]
    lead = assigned(tenant, sam)
    contacted(lead, dana, minutes=3)  # Dana covered for Sam and called
    lead_assign(lead=lead, owner=floor["will"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    rows = rep_breakdown(tenant=tenant, period=period(tenant))
    assert row(rows, dana).contacted == 1 and row(rows, dana).median_seconds == 180.0
    assert row(rows, sam).contacted == 0 and row(rows, sam).leads == 1
    assert row(rows, floor["will"]).contacted == 0 and row(rows, floor["will"]).leads == 1


def test_credit_never_crosses_tenants(tenant, other_tenant, floor):
    sam = floor["sam"]
    ours = assigned(tenant, sam)
    contacted(ours, sam, minutes=1)
    routing_defaults_create(tenant=other_tenant, actor=SYSTEM)
    Membership.objects.unscoped().create(tenant=other_tenant, user=sam, role=Role.SDR)
    theirs = assigned(other_tenant, sam)
    contacted(theirs, sam, minutes=50)
    lead_reject(lead=Lead.objects.unscoped().get(pk=theirs.pk), actor=Actor.for_user(sam), reason_code="spam")
    mine = row(rep_breakdown(tenant=tenant, period=period(tenant)), sam)
    assert (mine.leads, mine.contacted, mine.median_seconds, mine.rejected) == (1, 1, 60.0, 0)
    assert rejections_by_rep(tenant=tenant, period=period(tenant)) == []


# --- a rep's own numbers ------------------------------------------------------------------------------------


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def worked_week(tenant, other_tenant, floor):
    """Sam: three leads (one contacted in 2 min and rejected, one contacted in 10 min and qualified for Ava, one
    breached and moved to Dana); Dana's own contacted lead; another tenant's Sam lookalike."""
    sam, dana = floor["sam"], floor["dana"]
    rejected, qualified, late = (assigned(tenant, sam) for _ in range(3))
    contacted(rejected, sam, minutes=2)
    lead_reject(lead=Lead.objects.unscoped().get(pk=rejected.pk), actor=Actor.for_user(sam), reason_code="not_icp")
    contacted(qualified, sam, minutes=10)
    lead_qualify(lead=Lead.objects.unscoped().get(pk=qualified.pk), actor=Actor.for_user(sam), **BANT)
    breached(late)
    leads_reassign_bulk(tenant=tenant, from_user=sam, to_user=dana, actor=Actor.for_user(floor["mia"]), reason="x")
    contacted(assigned(tenant, dana), dana, minutes=30)
    globex_sam = person(other_tenant, username="sam@globex.test")
    contacted(assigned(other_tenant, globex_sam), globex_sam, minutes=1)
    return floor


def test_a_reps_numbers_are_their_own(tenant, worked_week):
    response = client_of(worked_week["sam"]).get("/dashboard/me/")
    assert response.status_code == 200
    numbers = response.context["numbers"]
    r = numbers.row
    assert (r.leads, r.contacted, r.median_seconds, r.p90_seconds) == (3, 2, 360.0, pytest.approx(552.0))
    assert (r.worked, r.rejected, r.qualified, r.converted, r.disqualified) == (2, 1, 1, 0, 0)
    first = numbers.first_contact
    assert (first.met, first.breached) == (2, 1) and first.rate == pytest.approx(2 / 3)
    assert [(x.code, x.rejected) for x in numbers.rejections] == [("not_icp", 1)]
    body = response.content.decode()
    assert "My numbers" in body and "67%" in body and "Not our ideal customer" in body
    dana = client_of(worked_week["dana"]).get("/dashboard/me/").context["numbers"].row
    assert (dana.leads, dana.contacted, dana.median_seconds, dana.rejected) == (2, 1, 1800.0, 0)


@pytest.mark.parametrize("role", [Role.SDR, Role.AE])
def test_reps_visiting_the_dashboards_are_sent_to_their_numbers(tenant, floor, role):
    rep = floor["sam"] if role == Role.SDR else floor["ava"]
    response = client_of(rep).get("/dashboard/", {"start": "2026-01-01", "end": "2026-01-31"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/me/?start=2026-01-01&end=2026-01-31"
    assert client_of(rep).get("/dashboard/export/reps.csv").status_code == 403
    assert 'href="/dashboard/me/"' in client_of(rep).get("/dashboard/me/").content.decode()


def test_my_numbers_follow_the_period_and_refuse_a_bad_one_beside_the_field(tenant, worked_week):
    client = client_of(worked_week["sam"])
    empty = client.get("/dashboard/me/", {"start": "2020-01-01", "end": "2020-01-31"})
    assert empty.status_code == 200 and empty.context["numbers"].row.leads == 0
    assert "not rejected or disqualified a lead created in this period" in empty.content.decode()
    bad = client.get("/dashboard/me/", {"start": "2026-02-10", "end": "2026-02-01"})
    assert bad.status_code == 400
    assert '<p class="field-error" id="id_start-error">The start date must be on or before the end date.</p>' \
        in bad.content.decode()
    assert bad.context["numbers"].row.leads == 3  # the default period's figures


def test_a_manager_sees_a_rep_of_their_team_and_nobody_else(tenant, other_tenant, worked_week):
    sam = Membership.objects.unscoped().get(tenant=tenant, user=worked_week["sam"])
    will = Membership.objects.unscoped().get(tenant=tenant, user=worked_week["will"])
    globex = Membership.objects.unscoped().get(tenant=other_tenant, user__username="sam@globex.test")
    mia = client_of(worked_week["mia"])
    response = mia.get(f"/dashboard/reps/{sam.pk}/")
    assert response.status_code == 200 and response.context["numbers"].row.leads == 3
    assert "Numbers of sam@acme.test" in response.content.decode()
    assert mia.get(f"/dashboard/reps/{will.pk}/").status_code == 404  # another team
    assert mia.get(f"/dashboard/reps/{globex.pk}/").status_code == 404  # another tenant
    assert mia.get("/dashboard/reps/999999/").status_code == 404
    assert client_of(worked_week["admin"]).get(f"/dashboard/reps/{will.pk}/").status_code == 200
    assert client_of(worked_week["dana"]).get(f"/dashboard/reps/{sam.pk}/").status_code == 403
    assert Client().get("/dashboard/me/").status_code == 302


def test_the_reps_page_links_each_rep_to_their_numbers(tenant, worked_week):
    sam = Membership.objects.unscoped().get(tenant=tenant, user=worked_week["sam"])
    assert f'href="/dashboard/reps/{sam.pk}/"' in client_of(worked_week["mia"]).get("/manager/reps/").content.decode()


def test_my_numbers_run_a_bounded_number_of_queries(tenant, worked_week, django_assert_max_num_queries):
    client = client_of(worked_week["sam"])
    client.get("/dashboard/me/")
    for _ in range(15):
        contacted(assigned(tenant, worked_week["sam"]), worked_week["sam"], minutes=5)
    # session, user, membership (middleware); the breakdown, reasons and SLA figures; the menu's reads.
    with django_assert_max_num_queries(10):
        response = client.get("/dashboard/me/")
    assert response.status_code == 200 and response.context["numbers"].row.leads == 18
