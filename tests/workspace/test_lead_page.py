"""The lead page: what it shows, each action through its service, errors beside fields, stale and CSRF-less
posts refused, and 404 for another rep's or another tenant's lead."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.models import Role
from leads.models import Activity, Lead, LeadStage, LeadStatus, Opportunity
from routing.models import SlaClock, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import AccountFactory, LeadFactory, TeamFactory
from tests.support.workspace import owned_lead, person
from workspace.services.activities import activity_log
from workspace.services.lifecycle import lead_convert

pytestmark = pytest.mark.django_db


def url(lead, action=""):
    return f"/leads/{lead.pk}/" + (f"{action}/" if action else "")


def fresh(lead) -> Lead:
    return Lead.objects.unscoped().get(pk=lead.pk)


def running_clock(lead):
    return SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).first()


def test_page_shows_contact_account_score_class_timeline_and_running_sla(tenant, org, signed_in):
    rep = org["rep"]
    account = AccountFactory(tenant=tenant, domain="initech.example", name="Initech")
    lead = owned_lead(tenant, rep, first_name="Peter", last_name="Gibbons", company="Initech", account=account,
                      score=72, score_breakdown={"r-size": 40, "r-title": 32}, lead_class="high_fit", lead_class_reason="Fits the ICP")
    sibling = owned_lead(tenant, rep, first_name="Milton", account=account)
    colleague = owned_lead(tenant, org["rep2"], first_name="Samir", account=account)
    response = signed_in(rep, tenant).get(url(lead))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Peter Gibbons" in html and "Initech" in html
    assert "High-fit" in html and "Fits the ICP" in html and 'data-testid="lead-score">72<' in html
    assert "Rule r-size" in html and '<td class="num">40</td>' in html  # each rule's points
    assert f'href="/leads/{sibling.pk}/"' in html  # my other lead at the account: a link
    assert "Samir" in html and f'href="/leads/{colleague.pk}/"' not in html  # a colleague's: no link
    assert 'data-testid="timeline"' in html and "Assigned to rep@acme.test" in html
    assert 'class="countdown' in html and running_clock(lead) is not None
    assert f'name="expected_owner_id" value="{rep.pk}"' in html


@pytest.mark.parametrize("viewer", ["rep", "manager"])
def test_lead_page_query_count_is_bounded(tenant, org, signed_in, django_assert_max_num_queries, viewer):
    """The same number of queries whatever the account's leads, the timeline or the lead's opportunity."""
    rep = org["rep"]
    account = AccountFactory(tenant=tenant)
    lead = owned_lead(tenant, rep, account=account)
    for _ in range(15):
        owned_lead(tenant, rep, account=account)
        activity_log(lead=lead, kind="note", actor=Actor.for_user(rep), body="Researched the account")
    lead_convert(lead=lead, actor=Actor.for_user(rep))
    client = signed_in(org[viewer], tenant)
    client.get(url(lead))
    with django_assert_max_num_queries(21):  # 20, and the lost reasons of the open deal's "Close lost" form
        response = client.get(url(lead))
    assert response.status_code == 200 and b'data-testid="opportunity"' in response.content
    assert b'data-action="lost"' in response.content


def test_log_a_call_stops_the_sla_clock(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    assert running_clock(lead) is not None
    client = signed_in(rep, tenant)
    response = client.post(url(lead, "log"), {"kind": "call", "outcome": "connected", "body": "Good chat",
                                              "expected_owner_id": rep.pk})
    assert response.status_code == 302 and response["Location"] == url(lead)
    assert running_clock(lead) is None
    assert fresh(lead).status == LeadStatus.CONTACTED and fresh(lead).first_contacted_at is not None
    assert Activity.objects.unscoped().filter(lead=lead, kind="call", actor=rep).count() == 1
    page = client.get(url(lead)).content.decode()
    assert "Call logged." in page and 'data-testid="sla-stopped"' in page and "Good chat" in page


def test_a_note_needs_a_body_error_beside_the_field(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "log"), {"kind": "note", "expected_owner_id": rep.pk})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_body_error"><p class="field-error">A note needs a subject or a body.' in html
    assert "The action was not applied" in html
    assert not Activity.objects.unscoped().filter(lead=lead).exists()


def test_unknown_activity_kind_is_a_field_error(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "log"), {"kind": "fax", "expected_owner_id": rep.pk})
    assert response.status_code == 400 and b'id="id_kind_error"' in response.content


def test_accept_makes_the_mql_a_sal(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "accept"), {"expected_owner_id": rep.pk})
    assert response.status_code == 302
    assert fresh(lead).stage == LeadStage.SAL and running_clock(lead) is None


def test_reject_with_a_reason_from_the_taxonomy(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    page = client.get(url(lead)).content.decode()
    assert '<option value="spam">' in page  # the tenant's taxonomy
    response = client.post(url(lead, "reject"), {"reject-reason": "spam", "reject-note": "Bot signup",
                                                 "reject-expected_owner_id": rep.pk})
    assert response.status_code == 302 and response["Location"] == "/queue/"
    lead = fresh(lead)
    assert lead.status == LeadStatus.REJECTED and lead.rejection_reason == "spam" and lead.owner_id is None
    assert b"Lead rejected" in client.get("/queue/").content


def test_reject_without_a_reason_is_a_field_error(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "reject"), {"reject-reason": "", "reject-expected_owner_id": rep.pk})
    assert response.status_code == 400
    assert b'id="id_reject-reason_error"' in response.content
    assert b'data-action="reject" open' in response.content
    assert fresh(lead).status == LeadStatus.NEW


def test_reject_with_another_tenants_reason_is_refused(tenant, other_tenant, org, signed_in):
    from routing.models import RejectionReason

    RejectionReason.objects.unscoped().create(tenant=other_tenant, code="theirs", label="Theirs")
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "reject"), {"reject-reason": "theirs",
                                                                 "reject-expected_owner_id": rep.pk})
    assert response.status_code == 400 and fresh(lead).status == LeadStatus.NEW


def test_disqualify_with_a_reason(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "disqualify"), {
        "disqualify-reason": "no_budget", "disqualify-expected_owner_id": rep.pk})
    assert response.status_code == 302
    assert fresh(lead).status == LeadStatus.UNQUALIFIED and fresh(lead).rejection_reason == "no_budget"


def test_qualify_with_bant_hands_off_to_an_ae(tenant, org, signed_in):
    rep = org["rep"]
    aes = TeamFactory(tenant=tenant, name="AEs")
    person(tenant, role=Role.AE, team=aes)
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    missing = client.post(url(lead, "qualify"), {"budget": "$50k", "expected_owner_id": rep.pk})
    assert missing.status_code == 400
    assert b'id="id_authority_error"' in missing.content and b'id="id_need_error"' in missing.content
    response = client.post(url(lead, "qualify"), {"budget": "$50k", "authority": "VP", "need": "Speed",
                                                  "timeline": "Q3", "expected_owner_id": rep.pk})
    assert response.status_code == 302
    assert fresh(lead).stage == LeadStage.SQL and Opportunity.objects.unscoped().filter(lead=lead).exists()


def test_recycle_to_nurture(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "recycle"), {"reason": "Not now", "expected_owner_id": rep.pk})
    assert response.status_code == 302 and fresh(lead).status == LeadStatus.RECYCLED
    assert running_clock(lead) is None


def test_manager_reassigns_a_team_lead(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    client = signed_in(org["manager"], tenant)
    assert b'data-action="reassign"' in client.get(url(lead)).content
    no_reason = client.post(url(lead, "reassign"), {"to_user": org["rep2"].pk, "reason": "",
                                                   "expected_owner_id": org["rep"].pk})
    assert no_reason.status_code == 400 and b'id="id_reason_error"' in no_reason.content
    response = client.post(url(lead, "reassign"), {"to_user": org["rep2"].pk, "reason": "Rep is out",
                                                   "expected_owner_id": org["rep"].pk})
    assert response.status_code == 302 and fresh(lead).owner_id == org["rep2"].pk


def test_a_rep_cannot_reassign(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    assert b'data-action="reassign"' not in client.get(url(lead)).content
    response = client.post(url(lead, "reassign"), {"to_user": org["rep2"].pk, "reason": "Mine now",
                                                   "expected_owner_id": rep.pk})
    assert response.status_code == 404 and fresh(lead).owner_id == rep.pk


def test_reassign_to_a_member_of_another_tenant_is_refused(tenant, other_tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    outsider = person(other_tenant)
    response = signed_in(org["manager"], tenant).post(url(lead, "reassign"), {
        "to_user": outsider.pk, "reason": "x", "expected_owner_id": org["rep"].pk})
    assert response.status_code == 400 and fresh(lead).owner_id == org["rep"].pk


@pytest.mark.parametrize("action,data", [
    ("log", {"kind": "call"}),
    ("accept", {}),
    ("recycle", {"reason": "Not now"}),
    ("qualify", {"budget": "b", "authority": "a", "need": "n", "timeline": "t"}),
])
def test_an_action_on_a_lead_reassigned_meanwhile_is_refused(tenant, org, signed_in, action, data):
    lead = owned_lead(tenant, org["manager"])  # the manager sees their team's leads before and after
    client = signed_in(org["manager"], tenant)
    shown_owner = lead.owner_id
    lead_assign(lead=lead, owner=org["rep2"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    response = client.post(url(lead, action), data | {"expected_owner_id": shown_owner})
    assert response.status_code == 400
    assert b"reassigned meanwhile" in response.content
    lead = fresh(lead)
    assert lead.owner_id == org["rep2"].pk and lead.status == LeadStatus.NEW and lead.stage == LeadStage.MQL
    assert not Activity.objects.unscoped().filter(lead=lead).exists()


def test_stale_reject_is_refused(tenant, org, signed_in):
    lead = owned_lead(tenant, org["manager"])
    client = signed_in(org["manager"], tenant)
    lead_assign(lead=lead, owner=org["rep2"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    response = client.post(url(lead, "reject"), {"reject-reason": "spam", "reject-expected_owner_id": org["manager"].pk})
    assert response.status_code == 400 and b"reassigned meanwhile" in response.content
    assert fresh(lead).status == LeadStatus.NEW


def test_csrf_less_post_is_refused(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant, enforce_csrf_checks=True)
    response = client.post(url(lead, "log"), {"kind": "call", "expected_owner_id": rep.pk})
    assert response.status_code == 403 and b"You can" in response.content
    assert running_clock(lead) is not None and not Activity.objects.unscoped().filter(lead=lead).exists()


def test_another_reps_lead_is_404(tenant, org, signed_in):
    theirs = owned_lead(tenant, org["rep2"])
    client = signed_in(org["rep"], tenant)
    assert client.get(url(theirs)).status_code == 404
    assert client.post(url(theirs, "log"), {"kind": "call", "expected_owner_id": org["rep2"].pk}).status_code == 404
    assert not Activity.objects.unscoped().filter(lead=theirs).exists()


def test_another_tenants_lead_is_404(tenant, other_tenant, org, signed_in):
    theirs = LeadFactory(tenant=other_tenant)
    admin = person(tenant, role=Role.ADMIN)  # sees every lead of its own tenant, none of another's
    client = signed_in(admin, tenant)
    assert client.get(url(theirs)).status_code == 404
    assert client.post(url(theirs, "accept"), {"expected_owner_id": ""}).status_code == 404


def test_missing_lead_and_unknown_action_are_404(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    assert client.get("/leads/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.post(url(lead, "explode"), {}).status_code == 404
    assert client.get(url(lead, "log")).status_code == 405


def test_closed_lead_offers_no_actions_and_refuses_them(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    Lead.objects.unscoped().filter(pk=lead.pk).update(status=LeadStatus.UNQUALIFIED)
    client = signed_in(rep, tenant)
    assert b"no actions are open" in client.get(url(lead)).content
    response = client.post(url(lead, "accept"), {"expected_owner_id": rep.pk})
    assert response.status_code == 400 and b"cannot be" in response.content


def test_lead_page_reassign_starts_empty_and_offers_only_reps_who_can_take_the_lead(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    away = person(tenant, team=org["team"], username="away@acme.test", is_available=False)
    ops = person(tenant, role=Role.MARKETING_OPS, username="ops@acme.test")
    page = signed_in(org["manager"], tenant).get(url(lead)).content.decode()
    select = page[page.index('name="to_user"'):]
    select = select[:select.index("</select>")]
    assert '<option value="" selected>Choose a rep…</option>' in select
    assert 'value="rules"' in select and f'value="{org["rep2"].pk}"' in select
    for user in (org["rep"], away, ops):  # the owner, an unavailable rep, marketing ops
        assert f'value="{user.pk}"' not in select
    blank = signed_in(org["manager"], tenant).post(url(lead, "reassign"), {
        "to_user": "", "reason": "x", "expected_owner_id": org["rep"].pk})
    assert blank.status_code == 400 and "Choose a rep, or the routing rules." in blank.content.decode()
    assert fresh(lead).owner_id == org["rep"].pk
    unavailable = signed_in(org["manager"], tenant).post(url(lead, "reassign"), {
        "to_user": away.pk, "reason": "x", "expected_owner_id": org["rep"].pk})
    assert unavailable.status_code == 400 and fresh(lead).owner_id == org["rep"].pk


def test_the_lead_page_names_the_country_of_its_code(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"], country="US")
    body = signed_in(org["rep"], tenant).get(url(lead)).content.decode()
    assert "<dt>Country</dt><dd>United States of America (US)</dd>" in body
    unknown = owned_lead(tenant, org["rep"], country="")
    assert "<dt>Country</dt><dd>—</dd>" in signed_in(org["rep"], tenant).get(url(unknown)).content.decode()
