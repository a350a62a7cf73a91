"""Manager pages: team queue, Unassigned, Escalations, Aging, reps (availability, bulk reassignment).

Real PostgreSQL; pages are driven through Django's test client with sessions and CSRF checks on."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Lead
from routing.models import Assignment, Escalation, EscalationAction, SlaClock, SlaKind
from routing.services.assign import lead_route
from tests.support.factories import MembershipFactory
from tests.support.routing import fresh, lead, membership, rep, rule, team

pytestmark = pytest.mark.django_db

PAGES = ["/manager/", "/manager/unassigned/", "/manager/escalations/", "/manager/aging/", "/manager/reps/"]


def signed_in(user, tenant=None) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    if tenant is not None:
        session = client.session
        session[SESSION_TENANT_KEY] = tenant.pk
        session.save()
    return client


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def world(tenant, other_tenant):
    """Two teams in the tenant (ours with a manager and two SDRs, another with one SDR), an admin,
    and a second tenant with its own manager, rep and leads."""
    inbound, outbound = team(tenant, "Inbound"), team(tenant, "Outbound")
    boss = rep(tenant, inbound, role=Role.MANAGER, username="boss@acme.test")
    inbound.manager = boss
    inbound.save(update_fields=["manager"])
    ann = rep(tenant, inbound, username="ann@acme.test")
    bob = rep(tenant, inbound, username="bob@acme.test")
    olga = rep(tenant, outbound, username="olga@acme.test")
    admin = rep(tenant, role=Role.ADMIN, username="admin@acme.test")
    rule(tenant, 10, team=inbound, name="Inbound RR")
    globex_team = team(other_tenant, "Globex team")
    globex_boss = rep(other_tenant, globex_team, role=Role.MANAGER, username="boss@globex.test")
    globex_rep = rep(other_tenant, globex_team, username="rep@globex.test")
    return {
        "inbound": inbound, "outbound": outbound, "boss": boss, "ann": ann, "bob": bob, "olga": olga,
        "admin": admin, "globex_boss": globex_boss, "globex_rep": globex_rep, "globex_team": globex_team,
    }


# --- who may see the pages --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("who", ["boss", "admin"])
def test_every_manager_page_renders_for_managers_and_admins(world, path, who):
    response = signed_in(world[who]).get(path)
    assert response.status_code == 200
    assert b"Team queue" in response.content and b"Unassigned" in response.content


@pytest.mark.parametrize("path", PAGES + ["/manager/reps/1/availability/"])
def test_a_rep_gets_403_on_manager_pages(world, path):
    assert signed_in(world["ann"]).get(path).status_code == 403


@pytest.mark.parametrize("role", [Role.AE, Role.MARKETING_OPS])
def test_other_roles_get_403(tenant, world, role):
    assert signed_in(rep(tenant, role=role)).get("/manager/").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(world):
    response = Client().get("/manager/")
    assert response.status_code == 302 and "login" in response["Location"]


# --- team queue ---------------------------------------------------------------------------------------


def test_team_queue_shows_the_teams_open_leads_in_sla_order_with_countdown_and_badges(tenant, other_tenant, world):
    now = timezone.now()
    later = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Later", sla_due_at=now + timedelta(hours=2),
                 band="warm", lead_class="mql", score=55)
    sooner = lead(tenant, owner=world["bob"], team=world["inbound"], first_name="Sooner",
                  sla_due_at=now - timedelta(minutes=5), band="hot", score=90)
    lead(tenant, owner=world["olga"], team=world["outbound"], first_name="OtherTeam")
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Closed", status="converted")
    lead(other_tenant, owner=world["globex_rep"], team=world["globex_team"], first_name="Globex")
    body = signed_in(world["boss"]).get("/manager/").content.decode()
    assert body.index("Sooner") < body.index("Later")
    assert "OtherTeam" not in body and "Closed" not in body and "Globex" not in body
    assert 'class="countdown overdue"' in body
    assert f'data-due="{timezone.localtime(sooner.sla_due_at).isoformat()}"' in body
    assert 'data-due="' in body and 'badge badge-hot' in body and 'badge badge-warm' in body
    assert "badge-class-mql" in body
    assert str(later.pk) in body


def test_admin_sees_every_team_but_never_another_tenant(tenant, other_tenant, world):
    lead(tenant, owner=world["olga"], team=world["outbound"], first_name="OtherTeam")
    lead(other_tenant, owner=world["globex_rep"], first_name="Globex")
    body = signed_in(world["admin"]).get("/manager/").content.decode()
    assert "OtherTeam" in body and "Globex" not in body


def test_team_queue_filters_by_rep_and_status(tenant, world):
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="AnnNew")
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="AnnContacted", status="contacted")
    lead(tenant, owner=world["bob"], team=world["inbound"], first_name="BobNew")
    client = signed_in(world["boss"])
    body = client.get("/manager/", {"rep": world["ann"].pk}).content.decode()
    assert "AnnNew" in body and "AnnContacted" in body and "BobNew" not in body
    body = client.get("/manager/", {"rep": world["ann"].pk, "status": "contacted"}).content.decode()
    assert "AnnContacted" in body and "AnnNew" not in body
    # another team's rep is not a choice: the filter is ignored instead of leaking their leads
    lead(tenant, owner=world["olga"], team=world["outbound"], first_name="OlgaLead")
    assert "OlgaLead" not in client.get("/manager/", {"rep": world["olga"].pk}).content.decode()


def test_team_queue_htmx_requests_get_the_results_only(tenant, world, django_assert_max_num_queries):
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="AnnLead")
    lead(tenant, owner=world["bob"], team=world["inbound"], first_name="BobLead")
    client = signed_in(world["boss"])
    client.get("/manager/")
    with django_assert_max_num_queries(10):
        response = client.get("/manager/", {"rep": world["bob"].pk}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.startswith('<div id="queue-results"') and "<html" not in body
    assert "BobLead" in body and "AnnLead" not in body


def test_team_queue_paginates(tenant, world):
    for i in range(30):
        lead(tenant, owner=world["ann"], team=world["inbound"], first_name=f"P{i:02d}", score=100 - i)
    client = signed_in(world["boss"])
    first = client.get("/manager/").content.decode()
    second = client.get("/manager/", {"page": 2}).content.decode()
    assert "Page 1 of 2" in first and ">P00<" not in second and "P29" in second and "P29" not in first


@pytest.mark.parametrize("path", PAGES)
def test_list_pages_use_a_bounded_number_of_queries(tenant, world, path, django_assert_max_num_queries):
    now = timezone.now()
    client = signed_in(world["boss"])
    client.get(path)  # warm the session

    def populate(n):
        for _ in range(n):
            owned = lead(tenant, owner=world["ann"], team=world["inbound"], sla_due_at=now - timedelta(hours=1),
                         aging_flagged_at=now, assigned_at=now - timedelta(days=3))
            lead(tenant, unassigned_reason="Nobody available")
            clock = SlaClock.objects.unscoped().create(
                tenant=tenant, lead=owned, kind=SlaKind.FIRST_CONTACT, owner=world["ann"], started_at=now - timedelta(hours=2),
                due_at=now - timedelta(hours=1), breached_at=now - timedelta(hours=1), level=1)
            Escalation.objects.unscoped().create(tenant=tenant, clock=clock, lead=owned, level=1,
                                                 action=EscalationAction.ALERT_MANAGER, owner=world["ann"],
                                                 target=world["boss"])

    populate(2)
    with django_assert_max_num_queries(12):
        assert client.get(path).status_code == 200
    populate(20)
    with django_assert_max_num_queries(12):
        assert client.get(path).status_code == 200


# --- unassigned: assign and route again -------------------------------------------------------------------


def test_unassigned_lists_leads_with_the_reason_and_assigns_to_a_rep(tenant, other_tenant, world):
    waiting = lead(tenant, first_name="Waiting", unassigned_reason="Every rep of Inbound is at capacity")
    lead(tenant, first_name="OtherTeamWaiting", team=world["outbound"])
    lead(other_tenant, first_name="GlobexWaiting")
    client = csrf_client(world["boss"])
    page = client.get("/manager/unassigned/")
    body = page.content.decode()
    assert "Waiting" in body and "Every rep of Inbound is at capacity" in body
    assert "OtherTeamWaiting" not in body and "GlobexWaiting" not in body
    assert f'value="{world["ann"].pk}"' in body and f'value="{world["olga"].pk}"' not in body
    token = page.cookies["csrftoken"].value
    response = client.post(f"/manager/leads/{waiting.pk}/reassign/", {
        "to_user": world["ann"].pk, "expected_owner_id": "", "next": "/manager/unassigned/",
        "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/manager/unassigned/"
    assert fresh(waiting).owner_id == world["ann"].pk
    assignment = Assignment.objects.unscoped().get(lead=waiting)
    assert (assignment.trigger, assignment.actor_user_id, assignment.reason) == (
        "reassignment", world["boss"].pk, "Assigned from Unassigned")
    followed = client.get(response["Location"]).content.decode()
    assert "now belongs to ann@acme.test" in followed


def test_route_again_runs_the_rules(tenant, world):
    waiting = lead(tenant, unassigned_reason="No rule matched")
    response = signed_in(world["boss"]).post(f"/manager/leads/{waiting.pk}/reassign/", {
        "to_user": "rules", "expected_owner_id": "", "reason": "Routed again from Unassigned"})
    assert response.status_code == 302
    assert fresh(waiting).owner_id in {world["ann"].pk, world["bob"].pk}


def test_route_again_with_nobody_to_take_it_says_so(tenant, world):
    for user in (world["ann"], world["bob"]):
        Membership.objects.unscoped().filter(tenant=tenant, user=user).update(is_available=False)
    waiting = lead(tenant)
    client = signed_in(world["boss"])
    response = client.post(f"/manager/leads/{waiting.pk}/reassign/", {"to_user": "rules", "expected_owner_id": ""},
                           follow=True)
    assert fresh(waiting).owner_id is None
    assert "still unassigned" in response.content.decode()


def test_a_post_without_csrf_is_refused(tenant, world):
    waiting = lead(tenant)
    response = csrf_client(world["boss"]).post(f"/manager/leads/{waiting.pk}/reassign/", {"to_user": world["ann"].pk})
    assert response.status_code == 403 and fresh(waiting).owner_id is None


def test_a_lead_assigned_meanwhile_is_refused_with_a_message(tenant, world):
    waiting = lead(tenant, owner=world["bob"], team=world["inbound"])  # somebody took it since the page loaded
    response = signed_in(world["boss"]).post(f"/manager/leads/{waiting.pk}/reassign/", {
        "to_user": world["ann"].pk, "expected_owner_id": ""})
    assert response.status_code == 400
    assert "reassigned meanwhile" in response.content.decode()
    assert fresh(waiting).owner_id == world["bob"].pk


def test_an_out_of_office_rep_is_not_offered_and_refused_beside_the_field(tenant, world):
    owned = lead(tenant, owner=world["bob"], team=world["inbound"])
    Membership.objects.unscoped().filter(tenant=tenant, user=world["ann"]).update(is_available=False)
    client = signed_in(world["boss"])
    assert f'value="{world["ann"].pk}"' not in client.get(f"/manager/leads/{owned.pk}/reassign/").content.decode()
    response = client.post(f"/manager/leads/{owned.pk}/reassign/", {
        "to_user": world["ann"].pk, "expected_owner_id": world["bob"].pk, "reason": "Rebalance"})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_to_user-errors"' in body and "Select a valid choice" in body
    assert fresh(owned).owner_id == world["bob"].pk


def test_reassign_to_another_teams_rep_is_not_a_choice(tenant, world):
    owned = lead(tenant, owner=world["bob"], team=world["inbound"])
    response = signed_in(world["boss"]).post(f"/manager/leads/{owned.pk}/reassign/", {
        "to_user": world["olga"].pk, "expected_owner_id": world["bob"].pk, "reason": "x"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert fresh(owned).owner_id == world["bob"].pk


def test_reassign_page_renders_with_the_current_owner_expected(tenant, world):
    owned = lead(tenant, owner=world["bob"], team=world["inbound"])
    body = signed_in(world["boss"]).get(f"/manager/leads/{owned.pk}/reassign/?next=//evil.test/").content.decode()
    assert f'name="expected_owner_id" value="{world["bob"].pk}"' in body
    assert "evil.test" not in body


@pytest.mark.parametrize("whose", ["other_team", "other_tenant", "missing", "garbage"])
def test_a_lead_out_of_reach_is_a_404(tenant, other_tenant, world, whose):
    target = {
        "other_team": lambda: str(lead(tenant, owner=world["olga"], team=world["outbound"]).pk),
        "other_tenant": lambda: str(lead(other_tenant, owner=world["globex_rep"]).pk),
        "missing": lambda: "3f1c2b1e-0000-4000-8000-000000000000",
        "garbage": lambda: "not-a-uuid",
    }[whose]()
    client = signed_in(world["boss"])
    assert client.get(f"/manager/leads/{target}/reassign/").status_code == 404
    assert client.post(f"/manager/leads/{target}/reassign/", {"to_user": world["ann"].pk}).status_code == 404


def test_a_manager_of_two_tenants_sees_only_the_active_one(tenant, other_tenant, world):
    MembershipFactory(tenant=other_tenant, user=world["boss"], role=Role.MANAGER, team=world["globex_team"])
    lead(other_tenant, owner=world["globex_rep"], team=world["globex_team"], first_name="GlobexLead")
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="AcmeLead")
    acme = signed_in(world["boss"], tenant).get("/manager/").content.decode()
    globex = signed_in(world["boss"], other_tenant).get("/manager/").content.decode()
    assert "AcmeLead" in acme and "GlobexLead" not in acme
    assert "GlobexLead" in globex and "AcmeLead" not in globex


# --- escalations and aging ------------------------------------------------------------------------------------


def test_escalations_show_breached_running_clocks_and_steps(tenant, other_tenant, world):
    now = timezone.now()
    late = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Late")
    stopped = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Stopped")
    foreign = lead(other_tenant, owner=world["globex_rep"], team=world["globex_team"], first_name="Foreign")

    def clock(subject, tenant_=tenant, owner=world["ann"], **kw):
        return SlaClock.objects.unscoped().create(
            tenant=tenant_, lead=subject, kind=SlaKind.FIRST_CONTACT, owner=owner, policy_name="Hot 15 min",
            started_at=now - timedelta(hours=3), due_at=now - timedelta(hours=2), breached_at=now - timedelta(hours=2),
            level=2, **kw)

    running = clock(late)
    clock(stopped, stopped_at=now)
    clock(foreign, tenant_=other_tenant, owner=world["globex_rep"])
    Escalation.objects.unscoped().create(tenant=tenant, clock=running, lead=late, level=1, owner=world["ann"],
                                         action=EscalationAction.ALERT_MANAGER, target=world["boss"],
                                         at=now - timedelta(hours=2))
    body = signed_in(world["boss"]).get("/manager/escalations/").content.decode()
    assert "Late" in body and "Stopped" not in body and "Foreign" not in body
    assert "overdue by 2\xa0hours" in body and "Hot 15 min" in body
    assert "1. Alert the manager" in body


def test_aging_lists_flagged_and_alerted_leads(tenant, world):
    now = timezone.now()
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Flagged", aging_flagged_at=now,
         assigned_at=now - timedelta(hours=50))
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Alerted", aging_flagged_at=now,
         aging_alerted_at=now, assigned_at=now - timedelta(hours=80))
    lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Fresh", assigned_at=now)
    lead(tenant, owner=world["olga"], team=world["outbound"], first_name="OtherTeam", aging_flagged_at=now)
    body = signed_in(world["boss"]).get("/manager/aging/").content.decode()
    assert "Flagged" in body and "Alerted" in body and "Fresh" not in body and "OtherTeam" not in body
    assert body.index("Alerted") < body.index("Flagged")  # the longest untouched first
    assert "Manager alerted" in body and "3\xa0days" in body


# --- reps: load, availability, bulk reassignment -------------------------------------------------------------


def test_reps_page_shows_load_capacity_and_availability(tenant, world):
    Membership.objects.unscoped().filter(tenant=tenant, user=world["ann"]).update(capacity=5)
    Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(
        unavailable_from=timezone.now() - timedelta(days=1), unavailable_until=timezone.now() + timedelta(days=1))
    for _ in range(3):
        lead(tenant, owner=world["ann"], team=world["inbound"])
    body = signed_in(world["boss"]).get("/manager/reps/").content.decode()
    assert "ann@acme.test" in body and "bob@acme.test" in body and "olga@acme.test" not in body
    ann_row = body[body.index('data-rep="ann@acme.test"'):body.index('data-rep="bob@acme.test"')]
    assert '"Open leads">3</td>' in ann_row and '"Capacity">5</td>' in ann_row and "Available" in ann_row
    bob_row = body[body.index('data-rep="bob@acme.test"'):]
    assert "Out of office" in bob_row and "Mark available" in bob_row


def test_toggling_a_rep_out_of_office_makes_routing_skip_them(tenant, world):
    client = signed_in(world["boss"])
    ann = membership(tenant, world["ann"])
    response = client.post(f"/manager/reps/{ann.pk}/toggle/", {"out_of_office": "1"}, follow=True)
    assert "ann@acme.test is out of office" in response.content.decode()
    assert fresh(ann).is_available is False
    event = AuditEvent.objects.unscoped().get(action="membership.availability_set")
    assert event.changes == {"is_available": [True, False]} and event.actor_user_id == world["boss"].pk
    from leadmgmt.audit.actors import Actor

    for _ in range(4):
        assert lead_route(lead=lead(tenant), actor=Actor.agent("t"), trigger="capture").owner_id == world["bob"].pk
    client.post(f"/manager/reps/{ann.pk}/toggle/", {"out_of_office": "0"})
    assert fresh(ann).is_available is True
    owners = {lead_route(lead=lead(tenant), actor=Actor.agent("t"), trigger="capture").owner_id for _ in range(4)}
    assert world["ann"].pk in owners


def test_out_of_office_dates_are_saved_and_a_bad_range_is_refused_beside_the_field(tenant, world):
    client = signed_in(world["boss"])
    ann = membership(tenant, world["ann"])
    assert client.get(f"/manager/reps/{ann.pk}/availability/").status_code == 200
    bad = client.post(f"/manager/reps/{ann.pk}/availability/", {
        "is_available": "on", "unavailable_from": "2030-05-10T09:00", "unavailable_until": "2030-05-01T09:00"})
    assert bad.status_code == 400
    assert 'id="id_unavailable_until-errors"' in bad.content.decode() and "must end after it starts" in bad.content.decode()
    assert fresh(ann).unavailable_from is None
    bad_date = client.post(f"/manager/reps/{ann.pk}/availability/", {"unavailable_from": "next tuesday"})
    assert bad_date.status_code == 400 and 'id="id_unavailable_from-errors"' in bad_date.content.decode()
    ok = client.post(f"/manager/reps/{ann.pk}/availability/", {
        "is_available": "on", "unavailable_from": "2030-05-01T09:00", "unavailable_until": "2030-05-10T09:00"})
    assert ok.status_code == 302
    saved = fresh(ann)
    assert saved.is_available and saved.unavailable_from.year == 2030 and saved.unavailable_until.day == 10


@pytest.mark.parametrize("whose", ["other_team", "other_tenant", "missing"])
def test_another_teams_or_tenants_rep_is_a_404(tenant, other_tenant, world, whose):
    target = {"other_team": lambda: membership(tenant, world["olga"]).pk,
              "other_tenant": lambda: membership(other_tenant, world["globex_rep"]).pk,
              "missing": lambda: 999999}[whose]()
    client = signed_in(world["boss"])
    assert client.get(f"/manager/reps/{target}/availability/").status_code == 404
    assert client.post(f"/manager/reps/{target}/toggle/", {"out_of_office": "1"}).status_code == 404


def bulk(client, data, *, confirm=False, token=None):
    """The Reps page's bulk move: the preview POST, or the confirm POST with the preview's token."""
    body = {k: v for k, v in data.items()}
    if confirm:
        body |= {"confirm": "1", "token": token or ""}
    return client.post("/manager/reps/reassign/", body)


def preview_token(response) -> str:
    return re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)


def test_bulk_reassignment_to_a_named_rep_previews_then_moves_on_confirm(tenant, world):
    leads = [lead(tenant, owner=world["ann"], team=world["inbound"], first_name=f"Moving{i}") for i in range(3)]
    closed = lead(tenant, owner=world["ann"], team=world["inbound"], status="converted", first_name="Closed")
    client = signed_in(world["boss"])
    data = {"from_user": world["ann"].pk, "to_user": world["bob"].pk, "reason": "Ann left"}

    preview = bulk(client, data)
    body = preview.content.decode()
    assert preview.status_code == 200 and "Move 3 open leads of ann@acme.test?" in body
    assert all(f'data-lead-id="{x.pk}"' in body for x in leads) and "Closed" not in body
    assert 'name="confirm" value="1"' in body and "csrfmiddlewaretoken" in body
    assert {fresh(x).owner_id for x in leads} == {world["ann"].pk}, "a preview moves nothing"
    assert not Assignment.objects.unscoped().exists()

    done = bulk(client, data, confirm=True, token=preview_token(preview))
    report = done.content.decode()
    assert done.status_code == 200 and "Moved 3 leads from ann@acme.test to bob@acme.test." in report
    assert all(f'data-lead-id="{x.pk}"' in report for x in leads)
    assert {fresh(x).owner_id for x in leads} == {world["bob"].pk} and fresh(closed).owner_id == world["ann"].pk
    assert set(Assignment.objects.unscoped().values_list("trigger", flat=True)) == {"bulk_reassignment"}
    assert AuditEvent.objects.unscoped().filter(action="lead.assigned", actor_user=world["boss"]).count() == 3


def test_bulk_reassignment_through_the_rules_previews_the_rule_and_reports_the_unplaced(tenant, world):
    leads = [lead(tenant, owner=world["ann"], team=world["inbound"]) for _ in range(2)]
    client = signed_in(world["boss"])
    data = {"from_user": world["ann"].pk, "to_user": "rules", "reason": "Territory change"}
    preview = bulk(client, data)
    body = preview.content.decode()
    assert preview.status_code == 200 and "Through the routing rules, without ann@acme.test" in body
    assert "Rule “Inbound RR”: bob@acme.test" in body
    # Bob goes out of office between the preview and the confirm: no rule can place the leads any more.
    Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(is_available=False)
    done = bulk(client, data, confirm=True, token=preview_token(preview))
    report = done.content.decode()
    assert done.status_code == 200
    assert "Moved 0 leads of ann@acme.test through the routing rules; 2 could not be placed and went to Unassigned" \
        in report
    assert {fresh(x).owner_id for x in leads} == {None}
    assert 'href="/manager/unassigned/"' in report


def test_bulk_reassignment_through_the_rules_spreads_the_leads_and_says_where(tenant, world):
    leads = [lead(tenant, owner=world["ann"], team=world["inbound"]) for _ in range(2)]
    client = signed_in(world["boss"])
    data = {"from_user": world["ann"].pk, "to_user": "rules", "reason": "Territory change"}
    done = bulk(client, data, confirm=True, token=preview_token(bulk(client, data)))
    assert "Moved 2 leads of ann@acme.test through the routing rules (2 to bob@acme.test)." in done.content.decode()
    assert {fresh(x).owner_id for x in leads} == {world["bob"].pk}


@pytest.mark.parametrize("tamper", ["no_token", "forged", "other_target", "leads_changed"])
def test_a_confirm_that_does_not_match_its_preview_moves_nothing_and_shows_the_preview_again(tenant, world, tamper):
    moving = lead(tenant, owner=world["ann"], team=world["inbound"])
    client = signed_in(world["boss"])
    data = {"from_user": world["ann"].pk, "to_user": world["bob"].pk, "reason": "Ann left"}
    token = preview_token(bulk(client, data))
    if tamper == "no_token":
        token = ""
    elif tamper == "forged":
        token = token[:-3] + "abc"
    elif tamper == "other_target":
        data = {**data, "to_user": "rules"}
    else:
        lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Arrived")
    response = bulk(client, data, confirm=True, token=token)
    body = response.content.decode()
    assert response.status_code == 409 and 'id="bulk-problem"' in body and 'name="confirm" value="1"' in body
    if tamper == "leads_changed":
        assert "changed since the preview (they have 2 now)" in body and "Arrived" in body
    assert fresh(moving).owner_id == world["ann"].pk
    assert not Assignment.objects.unscoped().exists()
    again = bulk(client, data, confirm=True, token=preview_token(response))
    assert again.status_code == 200 and fresh(moving).owner_id != world["ann"].pk


def test_the_bulk_form_starts_empty_and_offers_only_reps_who_can_take_leads(tenant, world):
    Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(is_available=False)
    body = signed_in(world["boss"]).get("/manager/reps/").content.decode()
    form = body[body.index('id="bulk-reassign"'):]
    to_select = form[form.index('name="to_user"'):form.index("</select>", form.index('name="to_user"'))]
    from_select = form[form.index('name="from_user"'):form.index("</select>", form.index('name="from_user"'))]
    assert re.search(r'<option value="" selected>Choose a rep…</option>', to_select)
    assert '<option value="rules">Through the routing rules</option>' in to_select
    assert f'value="{world["ann"].pk}"' in to_select and f'value="{world["bob"].pk}"' not in to_select
    assert f'value="{world["bob"].pk}"' in from_select, "an unavailable rep's leads can still be moved"
    for who in ("olga", "boss", "admin"):
        assert f'value="{world[who].pk}"' not in to_select + from_select


@pytest.mark.parametrize("data,field,message", [
    ({"to_user": "", "reason": "x"}, "to_user", "Choose a rep, or the routing rules."),
    ({"to_user": "rules", "reason": ""}, "reason", "Give a reason for the reassignment"),
    ({"to_user": "self", "reason": "x"}, "to_user", "Pick someone other than"),
    ({"to_user": "olga", "reason": "x"}, "to_user", "Select a valid choice"),
    ({"to_user": "bob_away", "reason": "x"}, "to_user", "Select a valid choice"),
    ({"to_user": "bob_full", "reason": "x"}, "to_user", "bob@acme.test cannot take leads: at capacity"),
])
def test_bulk_reassignment_errors_show_beside_the_fields_and_nothing_moves(tenant, world, data, field, message):
    moving = lead(tenant, owner=world["ann"], team=world["inbound"])
    lead(tenant, owner=world["ann"], team=world["inbound"])
    users = {"self": world["ann"].pk, "olga": world["olga"].pk, "bob_away": world["bob"].pk,
             "bob_full": world["bob"].pk, "": "", "rules": "rules"}
    if data["to_user"] == "bob_away":
        Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(is_available=False)
    if data["to_user"] == "bob_full":
        Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(capacity=1)
    client = signed_in(world["boss"])
    for confirm in (False, True):
        response = bulk(client, {"from_user": world["ann"].pk, "to_user": users[data["to_user"]],
                                 "reason": data["reason"]}, confirm=confirm, token="x")
        assert response.status_code == 400
        body = response.content.decode()
        assert f'id="id_{field}-errors"' in body and message in body
    assert fresh(moving).owner_id == world["ann"].pk and not Assignment.objects.unscoped().exists()


def test_a_rep_without_open_leads_cannot_be_bulk_moved(tenant, world):
    response = bulk(signed_in(world["boss"]), {"from_user": world["ann"].pk, "to_user": world["bob"].pk,
                                               "reason": "x"})
    assert response.status_code == 400 and "ann@acme.test has no open leads to move." in response.content.decode()


def test_bulk_preview_and_confirm_need_csrf(tenant, world):
    moving = lead(tenant, owner=world["ann"], team=world["inbound"])
    client = csrf_client(world["boss"])
    data = {"from_user": world["ann"].pk, "to_user": world["bob"].pk, "reason": "x"}
    assert client.post("/manager/reps/reassign/", data).status_code == 403
    token = client.get("/manager/reps/").cookies["csrftoken"].value
    preview = client.post("/manager/reps/reassign/", {**data, "csrfmiddlewaretoken": token})
    assert preview.status_code == 200
    confirm = {**data, "confirm": "1", "token": preview_token(preview)}
    assert client.post("/manager/reps/reassign/", confirm).status_code == 403
    assert fresh(moving).owner_id == world["ann"].pk
    assert client.post("/manager/reps/reassign/", {**confirm, "csrfmiddlewaretoken": token}).status_code == 200
    assert fresh(moving).owner_id == world["bob"].pk


def test_a_manager_cannot_bulk_move_another_teams_rep(tenant, world):
    moving = lead(tenant, owner=world["olga"], team=world["outbound"])
    response = signed_in(world["boss"]).post("/manager/reps/reassign/", {
        "from_user": world["olga"].pk, "to_user": world["ann"].pk, "reason": "x"})
    assert response.status_code == 400 and fresh(moving).owner_id == world["olga"].pk


def test_admin_moves_leads_across_teams(tenant, world):
    moving = lead(tenant, owner=world["olga"], team=world["outbound"])
    client = signed_in(world["admin"])
    data = {"from_user": world["olga"].pk, "to_user": world["ann"].pk, "reason": "Olga moved to Inbound"}
    response = bulk(client, data, confirm=True, token=preview_token(bulk(client, data)))
    assert response.status_code == 200 and fresh(moving).owner_id == world["ann"].pk
    assert Lead.objects.unscoped().get(pk=moving.pk).team_id == world["inbound"].pk


# --- scope and the availability service ----------------------------------------------------------------


def test_a_manager_sees_the_team_they_manage_without_being_a_member_of_it(tenant, world):
    world["outbound"].manager = world["boss"]
    world["outbound"].save(update_fields=["manager"])
    lead(tenant, owner=world["olga"], team=world["outbound"], first_name="OlgaLead")
    client = signed_in(world["boss"])
    assert "OlgaLead" in client.get("/manager/").content.decode()
    assert "olga@acme.test" in client.get("/manager/reps/").content.decode()


@pytest.mark.parametrize("path,data", [
    ("/manager/reps/reassign/", {"from_user": "ann", "to_user": "rules", "reason": "x"}),
    ("/manager/reps/reassign/", {"from_user": "ann", "to_user": "rules", "reason": "x", "confirm": "1"}),
    ("/manager/reps/ann/toggle/", {"out_of_office": "1"}),
    ("/manager/reps/ann/availability/", {"is_available": ""}),
    ("/manager/leads/lead/reassign/", {"to_user": "", "expected_owner_id": "ann"}),
    ("/manager/leads/lead/reassign/row/", {"to_user": "", "expected_owner_id": "ann", "row": "queue"}),
])
def test_a_rep_cannot_post_manager_actions(tenant, world, path, data):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"])
    ann = membership(tenant, world["ann"])
    path = path.replace("/ann/", f"/{ann.pk}/").replace("/lead/", f"/{owned.pk}/")
    data = {k: (world["ann"].pk if v == "ann" else v) for k, v in data.items()}
    assert signed_in(world["bob"]).post(path, data).status_code == 403
    assert fresh(owned).owner_id == world["ann"].pk and fresh(ann).is_available is True


def test_availability_service_keeps_what_it_is_not_given_and_clears_with_none(tenant, world):
    from leadmgmt.audit.actors import Actor
    from routing.services.availability import membership_availability_set

    ann = membership(tenant, world["ann"])
    start, end = timezone.now() + timedelta(days=1), timezone.now() + timedelta(days=3)
    actor = Actor.for_user(world["boss"])
    membership_availability_set(membership=ann, actor=actor, unavailable_from=start, unavailable_until=end)
    membership_availability_set(membership=ann, actor=actor, is_available=False)
    saved = fresh(ann)
    assert (saved.is_available, saved.unavailable_from, saved.unavailable_until) == (False, start, end)
    membership_availability_set(membership=ann, actor=actor, unavailable_from=None, unavailable_until=None)
    assert (fresh(ann).unavailable_from, fresh(ann).unavailable_until, fresh(ann).is_available) == (None, None, False)
    events = AuditEvent.objects.unscoped().filter(action="membership.availability_set").count()
    membership_availability_set(membership=ann, actor=actor, is_available=False)  # nothing changes: no event
    assert AuditEvent.objects.unscoped().filter(action="membership.availability_set").count() == events == 3


def test_a_rep_out_of_office_by_dates_is_skipped_and_shown(tenant, world):
    client = signed_in(world["boss"])
    ann = membership(tenant, world["ann"])
    now = timezone.localtime()
    client.post(f"/manager/reps/{ann.pk}/availability/", {
        "is_available": "on", "unavailable_from": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "unavailable_until": (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")})
    body = client.get("/manager/reps/").content.decode()
    ann_row = body[body.index('data-rep="ann@acme.test"'):body.index('data-rep="bob@acme.test"')]
    assert "Out of office (dates)" in ann_row and "Mark available" in ann_row
    from leadmgmt.audit.actors import Actor

    assert {lead_route(lead=lead(tenant), actor=Actor.agent("t"), trigger="capture").owner_id
            for _ in range(3)} == {world["bob"].pk}
    client.post(f"/manager/reps/{ann.pk}/toggle/", {"out_of_office": "0"})  # back now: the range is cleared
    assert fresh(ann).unavailable_from is None and fresh(ann).is_available is True


# --- one click on a row: "Reassign to [rep] [Go]" ---------------------------------------------------------


def row_post(client, subject, to_user, *, row="queue", expected=None, htmx=True, nxt="/manager/?status=new"):
    data = {"to_user": to_user if to_user is not None else "rules", "row": row, "next": nxt,
            "expected_owner_id": "" if expected is None else expected}
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(f"/manager/leads/{subject.pk}/reassign/row/", data, **extra)


def nothing_written(subject, owner_id):
    assert fresh(subject).owner_id == owner_id
    assert not Assignment.objects.unscoped().filter(lead=subject, trigger="reassignment").exists()
    assert not AuditEvent.objects.unscoped().filter(action="lead.assigned", actor_user_id__isnull=False).exists()


def options_of(body: str, subject) -> set[str]:
    start = body.index(f'id="reassign-{subject.pk}"')
    return set(re.findall(r'<option value="(\d+)"', body[start:body.index("</select>", start)]))


def test_each_row_offers_the_available_reps_of_the_managers_teams_but_not_the_owner(tenant, world):
    carl = rep(tenant, world["inbound"], username="carl@acme.test", capacity=1)
    dina = rep(tenant, world["inbound"], username="dina@acme.test")
    Membership.objects.unscoped().filter(tenant=tenant, user=dina).update(is_available=False)
    lead(tenant, owner=carl, team=world["inbound"])  # Carl is at capacity
    owned = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Owned")
    waiting = lead(tenant, first_name="Waiting")
    queue = signed_in(world["boss"]).get("/manager/").content.decode()
    assert options_of(queue, owned) == {str(world["bob"].pk)}  # not Ann (owner), Carl (full), Dina (away), Olga
    assert 'class="inline-form reassign-inline"' in queue and ">Reassign to</label>" in queue
    unassigned = signed_in(world["boss"]).get("/manager/unassigned/").content.decode()
    assert options_of(unassigned, waiting) == {str(world["ann"].pk), str(world["bob"].pk)}
    admin_queue = signed_in(world["admin"]).get("/manager/").content.decode()
    assert str(world["olga"].pk) in options_of(admin_queue, owned)  # admins: the whole tenant


def test_reassign_selects_start_on_a_placeholder_that_is_refused(tenant, world):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Owned")
    client = signed_in(world["boss"])
    queue = client.get("/manager/").content.decode()
    select = queue[queue.index(f'id="reassign-{owned.pk}"'):queue.index("</select>", queue.index(f'id="reassign-{owned.pk}"'))]
    assert re.search(r'required[^>]*>\s*<option value="" selected>Choose a rep…</option>', select)
    page = client.get(f"/manager/leads/{owned.pk}/reassign/").content.decode()
    assert '<option value="" selected>Choose a rep…</option>' in page
    assert '<option value="rules">Route again through the rules</option>' in page
    refused = client.post(f"/manager/leads/{owned.pk}/reassign/", {
        "to_user": "", "expected_owner_id": world["ann"].pk, "reason": "x"})
    assert refused.status_code == 400 and "Choose a rep, or the routing rules." in refused.content.decode()
    row = row_post(client, owned, "", expected=world["ann"].pk)
    assert row.status_code == 400 and "Choose a rep, or the routing rules." in row.content.decode()
    nothing_written(owned, world["ann"].pk)


def test_an_sql_is_offered_to_aes_only(tenant, world):
    ae = rep(tenant, world["inbound"], role=Role.AE, username="ae@acme.test")
    sql = lead(tenant, owner=world["ann"], team=world["inbound"], status="qualified", stage="sql")
    client = signed_in(world["boss"])
    assert options_of(client.get("/manager/").content.decode(), sql) == {str(ae.pk)}
    refused = row_post(client, sql, world["bob"].pk, expected=world["ann"].pk)
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    assert row_post(client, sql, ae.pk, expected=world["ann"].pk).status_code == 200
    assert fresh(sql).owner_id == ae.pk


def test_a_row_with_nobody_to_take_the_lead_says_so(tenant, world):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"])
    Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(is_available=False)
    body = signed_in(world["boss"]).get("/manager/").content.decode()
    assert f'id="reassign-{owned.pk}"' not in body and "No rep can take it now" in body


def test_inline_reassign_swaps_the_row_with_the_new_owner(tenant, world, django_assert_max_num_queries):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Grace", sla_due_at=timezone.now())
    client = signed_in(world["boss"])
    client.get("/manager/")
    with django_assert_max_num_queries(40):  # the service's writes (assignment, audit, SLA clock) included
        response = row_post(client, owned, world["bob"].pk, expected=world["ann"].pk)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith(f'<tr data-lead-id="{owned.pk}"')
    assert "<html" not in body and "<table" not in body
    assert "Grace" in body and "now belongs to bob@acme.test" in body and 'class="row-changed"' in body
    assert f'name="expected_owner_id" value="{world["bob"].pk}"' in body  # ready for the next click
    assert options_of(body, owned) == {str(world["ann"].pk)}
    assert 'name="next" value="/manager/?status=new"' in body  # the page's own URL stays the way back
    assignment = Assignment.objects.unscoped().filter(lead=owned).latest("at")
    assert (fresh(owned).owner_id, assignment.previous_owner_id, assignment.actor_user_id, assignment.reason) == (
        world["bob"].pk, world["ann"].pk, world["boss"].pk, "Reassigned from the team queue")
    assert AuditEvent.objects.unscoped().filter(action="lead.assigned", actor_user_id=world["boss"].pk).count() == 1


def test_inline_reassign_without_javascript_goes_back_with_a_flash(tenant, world):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"])
    client = signed_in(world["boss"])
    response = row_post(client, owned, world["bob"].pk, expected=world["ann"].pk, htmx=False)
    assert response.status_code == 302 and response["Location"] == "/manager/?status=new"
    assert "now belongs to bob@acme.test" in client.get(response["Location"]).content.decode()
    assert fresh(owned).owner_id == world["bob"].pk
    # a foreign `next` is not followed
    again = row_post(client, owned, world["ann"].pk, expected=world["bob"].pk, htmx=False, nxt="https://evil.test/")
    assert again.status_code == 302 and again["Location"] == "/manager/"


def test_inline_reassign_of_a_lead_that_changed_hands_is_refused_on_the_row(tenant, world):
    owned = lead(tenant, owner=world["bob"], team=world["inbound"], first_name="Moved")  # the page showed Ann
    client = signed_in(world["boss"])
    response = row_post(client, owned, world["bob"].pk, expected=world["ann"].pk)
    body = response.content.decode()
    assert response.status_code == 400 and body.lstrip().startswith(f'<tr data-lead-id="{owned.pk}"')
    assert "reassigned meanwhile" in body and 'aria-invalid="true"' in body
    assert f'name="expected_owner_id" value="{world["bob"].pk}"' in body and "bob@acme.test" in body
    nothing_written(owned, world["bob"].pk)
    plain = row_post(client, owned, world["ann"].pk, expected=world["ann"].pk, htmx=False)
    assert plain.status_code == 302
    assert "reassigned meanwhile" in client.get(plain["Location"]).content.decode()
    nothing_written(owned, world["bob"].pk)


@pytest.mark.parametrize("who", ["other_tenant", "other_team", "out_of_office", "manager", "garbage"])
def test_inline_reassign_to_someone_outside_the_offered_reps_is_a_field_error(tenant, world, who):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"])
    if who == "out_of_office":
        Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(is_available=False)
    target = {"other_tenant": world["globex_rep"].pk, "other_team": world["olga"].pk, "out_of_office": world["bob"].pk,
              "manager": world["boss"].pk, "garbage": "bob"}[who]
    client = signed_in(world["boss"])
    response = row_post(client, owned, target, expected=world["ann"].pk)
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert f'id="reassign-{owned.pk}-errors"' in response.content.decode()
    nothing_written(owned, world["ann"].pk)
    plain = row_post(client, owned, target, expected=world["ann"].pk, htmx=False)
    assert plain.status_code == 400 and 'id="id_to_user-errors"' in plain.content.decode()
    nothing_written(owned, world["ann"].pk)


def test_inline_reassign_without_csrf_is_refused(tenant, world):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"])
    client = csrf_client(world["boss"])
    client.get("/manager/")
    response = client.post(f"/manager/leads/{owned.pk}/reassign/row/", {
        "to_user": world["bob"].pk, "row": "queue", "expected_owner_id": world["ann"].pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    nothing_written(owned, world["ann"].pk)


def test_inline_reassign_with_the_pages_csrf_token_works(tenant, world):
    owned = lead(tenant, owner=world["ann"], team=world["inbound"])
    client = csrf_client(world["boss"])
    page = client.get("/manager/")
    token = page.cookies["csrftoken"].value
    response = client.post(f"/manager/leads/{owned.pk}/reassign/row/", {
        "to_user": world["bob"].pk, "row": "queue", "expected_owner_id": world["ann"].pk},
        HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and fresh(owned).owner_id == world["bob"].pk


@pytest.mark.parametrize("whose", ["other_team", "other_tenant", "missing"])
def test_inline_reassign_of_a_lead_out_of_reach_is_a_404(tenant, other_tenant, world, whose):
    target = {"other_team": lambda: lead(tenant, owner=world["olga"], team=world["outbound"]),
              "other_tenant": lambda: lead(other_tenant, owner=world["globex_rep"], team=world["globex_team"]),
              "missing": lambda: Lead(pk="3f1c2b1e-0000-4000-8000-000000000000")}[whose]()
    assert row_post(signed_in(world["boss"]), target, world["bob"].pk).status_code == 404
    if whose != "missing":
        assert not Assignment.objects.unscoped().filter(lead_id=target.pk, trigger="reassignment").exists()


def test_inline_assign_from_unassigned_removes_the_row(tenant, world):
    waiting = lead(tenant, first_name="Waiting", unassigned_reason="No rule matched")
    client = signed_in(world["boss"])
    response = row_post(client, waiting, world["ann"].pk, row="unassigned", nxt="/manager/unassigned/")
    body = response.content.decode()
    assert response.status_code == 200 and 'class="row-gone"' in body and 'colspan="5"' in body
    assert "now belongs to ann@acme.test" in body and "reassign-inline" not in body
    assert Assignment.objects.unscoped().get(lead=waiting).reason == "Assigned from Unassigned"
    assert "Waiting" not in client.get("/manager/unassigned/").content.decode()


def test_inline_route_again_keeps_the_row_when_nobody_can_take_it(tenant, world):
    waiting = lead(tenant, first_name="Waiting")
    client = signed_in(world["boss"])
    for user in (world["ann"], world["bob"]):
        Membership.objects.unscoped().filter(tenant=tenant, user=user).update(is_available=False)
    response = row_post(client, waiting, None, row="unassigned")
    body = response.content.decode()
    assert response.status_code == 200 and "still unassigned" in body and "Route again" in body
    assert fresh(waiting).owner_id is None
    Membership.objects.unscoped().filter(tenant=tenant, user=world["bob"]).update(is_available=True)
    routed = row_post(client, waiting, None, row="unassigned").content.decode()
    assert "now belongs to bob@acme.test" in routed and 'class="row-gone"' in routed
    assert Assignment.objects.unscoped().filter(lead=waiting).latest("at").reason.startswith(
        "Routed again from Unassigned")


def test_inline_reassign_from_escalations_and_aging_removes_the_row(tenant, world):
    now = timezone.now()
    late = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Late")
    SlaClock.objects.unscoped().create(tenant=tenant, lead=late, kind=SlaKind.FIRST_CONTACT, owner=world["ann"],
                                       started_at=now - timedelta(hours=3), due_at=now - timedelta(hours=2),
                                       breached_at=now - timedelta(hours=2), level=1)
    stale = lead(tenant, owner=world["ann"], team=world["inbound"], first_name="Stale", aging_flagged_at=now,
                 assigned_at=now - timedelta(hours=60))
    client = signed_in(world["boss"])
    assert f'id="reassign-{late.pk}"' in client.get("/manager/escalations/").content.decode()
    assert f'id="reassign-{stale.pk}"' in client.get("/manager/aging/").content.decode()
    escalated = row_post(client, late, world["bob"].pk, row="escalations", expected=world["ann"].pk)
    assert escalated.status_code == 200 and 'colspan="6"' in escalated.content.decode()
    assert "now belongs to bob@acme.test" in escalated.content.decode()
    assert Assignment.objects.unscoped().get(lead=late).reason == "Reassigned from Escalations (SLA breached)"
    assert not SlaClock.objects.unscoped().filter(lead=late, stopped_at__isnull=True, breached_at__isnull=False).exists()
    aged = row_post(client, stale, world["bob"].pk, row="aging", expected=world["ann"].pk)
    assert aged.status_code == 200 and 'class="row-gone"' in aged.content.decode()
    assert fresh(stale).aging_flagged_at is None
    breached_page = client.get("/manager/escalations/").content.decode()
    breached_table = breached_page[breached_page.index('id="breached-title"'):breached_page.index('id="steps-title"')]
    assert "Late" not in breached_table and "Stale" not in client.get("/manager/aging/").content.decode()


def test_a_stale_click_on_a_row_that_left_its_list_says_where_the_lead_is(tenant, world):
    taken = lead(tenant, owner=world["bob"], team=world["inbound"])  # Unassigned showed it; Bob took it since
    response = row_post(signed_in(world["boss"]), taken, world["ann"].pk, row="unassigned")
    body = response.content.decode()
    assert response.status_code == 400 and 'class="row-gone"' in body
    assert "reassigned meanwhile" in body and "belongs to bob@acme.test now" in body
    nothing_written(taken, world["bob"].pk)


def test_row_controls_keep_list_pages_within_the_query_bound(tenant, world, django_assert_max_num_queries):
    now = timezone.now()
    for _ in range(25):
        owned = lead(tenant, owner=world["ann"], team=world["inbound"], sla_due_at=now - timedelta(hours=1),
                     aging_flagged_at=now, assigned_at=now - timedelta(days=3))
        lead(tenant, unassigned_reason="Nobody available")
        SlaClock.objects.unscoped().create(
            tenant=tenant, lead=owned, kind=SlaKind.FIRST_CONTACT, owner=world["ann"], started_at=now - timedelta(hours=2),
            due_at=now - timedelta(hours=1), breached_at=now - timedelta(hours=1), level=1)
    client = signed_in(world["boss"])
    client.get("/manager/")
    for path in ("/manager/", "/manager/unassigned/", "/manager/escalations/", "/manager/aging/"):
        with django_assert_max_num_queries(12):
            body = client.get(path).content.decode()
        assert body.count('class="inline-form reassign-inline"') == 25, path
    with django_assert_max_num_queries(10):
        partial = client.get("/manager/", {"status": "new"}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.count('class="inline-form reassign-inline"') == 25


@pytest.mark.parametrize("hostile", ["javascript:alert(document.cookie)", "https://evil.example/manager/",
                                     "//evil.example/manager/", "/admin/"])
def test_a_failed_reassign_never_reflects_a_posted_next_into_its_cancel_link(tenant, world, hostile):
    waiting = lead(tenant)
    response = signed_in(world["boss"]).post(f"/manager/leads/{waiting.pk}/reassign/", {
        "to_user": "", "expected_owner_id": "", "next": hostile})
    assert response.status_code == 400
    body = response.content.decode()
    cancel = body[body.index('class="btn" href="') + len('class="btn" href="'):]
    assert cancel.split('"', 1)[0] == "/manager/unassigned/"
    ok = signed_in(world["boss"]).post(f"/manager/leads/{waiting.pk}/reassign/", {
        "to_user": world["ann"].pk, "expected_owner_id": "", "next": hostile})
    assert ok.status_code == 302 and ok["Location"] == "/manager/unassigned/"
