"""The lead stays reachable to whoever just worked it: after qualify, reject or a reassignment the former owner
reads the lead (who owns it now, no action forms) instead of a 404, while a stranger and another tenant still get
the 404; a stale action comes back with what was typed and the reason (also for someone who can only read it now)."""
from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Activity, Lead, LeadStatus
from leads.selectors import LeadViewer, lead_get_for_viewer, lead_list
from routing.services.assign import lead_reassign
from tests.support.factories import LeadFactory, MembershipFactory, TeamFactory, UserFactory
from tests.support.workspace import owned_lead
from workspace.services.activities import activity_log

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k this year", "authority": "VP Sales signs", "need": "Faster lead routing", "timeline": "Q3"}


def url(lead, action=""):
    return f"/leads/{lead.pk}/" + (f"{action}/" if action else "")


def fresh(lead) -> Lead:
    return Lead.objects.unscoped().get(pk=lead.pk)


def action_forms(html: str, lead) -> list[str]:
    return re.findall(rf'<form method="post" action="/leads/{lead.pk}/([a-z-]+)/"', html)


@pytest.fixture
def team(tenant, org):
    """The org's SDRs with named people, and an AE team with Ana Ruiz."""
    aes = TeamFactory(tenant=tenant, name="AEs")
    ana = UserFactory(username="ana@acme.test", first_name="Ana", last_name="Ruiz")
    MembershipFactory(tenant=tenant, user=ana, role=Role.AE, team=aes)
    for key, (first, last) in {"rep": ("Dana", "Reyes"), "rep2": ("Sam", "Rivera"),
                               "manager": ("Maria", "Lopez")}.items():
        org[key].first_name, org[key].last_name = first, last
        org[key].save(update_fields=["first_name", "last_name"])
    return org | {"ae": ana}


def test_the_sdr_reads_the_lead_read_only_after_qualifying_it(tenant, team, signed_in):
    dana = team["rep"]
    lead = owned_lead(tenant, dana, first_name="Peter", last_name="Gibbons")
    client = signed_in(dana, tenant)
    response = client.post(url(lead, "qualify"), BANT | {"expected_owner_id": dana.pk})
    assert response.status_code == 302 and response["Location"] == "/queue/"
    queue = client.get("/queue/").content.decode()
    assert f'<a href="/leads/{lead.pk}/">Open Peter Gibbons</a>' in queue  # the flash links back to the lead

    page = client.get(url(lead))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="former-owner"' in html
    assert re.search(r"Now owned by <strong>Ana Ruiz</strong> \(AE\) since \w{3} \d+, \d\d:\d\d", html)
    assert action_forms(html, lead) == []  # no action forms at all: read only
    assert 'data-testid="bant-budget">$50k this year<' in html  # and everything to read
    assert "Handed off to Ana Ruiz (AE) by Dana Reyes (SDR)" in html


def test_the_sdr_reads_the_lead_after_rejecting_it_back_to_marketing(tenant, team, signed_in):
    dana = team["rep"]
    lead = owned_lead(tenant, dana)
    client = signed_in(dana, tenant)
    response = client.post(url(lead, "reject"), {"reject-reason": "spam", "reject-note": "Bot signup",
                                                 "reject-expected_owner_id": dana.pk})
    assert response.status_code == 302 and fresh(lead).owner_id is None
    html = client.get(url(lead)).content.decode()
    assert "Now in the <strong>Unassigned</strong> queue" in html and action_forms(html, lead) == []
    assert "Rejected by Dana Reyes (SDR): Spam" in html or "Rejected by Dana Reyes (SDR): spam" in html


def test_a_rep_whose_lead_a_manager_reassigned_reads_it_and_sees_who_has_it(tenant, team, signed_in):
    dana, sam = team["rep"], team["rep2"]
    lead = owned_lead(tenant, dana)
    lead_reassign(lead=lead, actor=Actor.for_user(team["manager"]), to_user=sam, reason="Dana is out today")
    html = signed_in(dana, tenant).get(url(lead)).content.decode()
    assert "Now owned by <strong>Sam Rivera</strong> (SDR)" in html and action_forms(html, lead) == []
    # Sam, the new owner, works it as usual
    assert "log" in action_forms(signed_in(sam, tenant).get(url(lead)).content.decode(), lead)


def test_a_recycled_lead_stays_with_its_owner_and_says_why_nothing_is_offered(tenant, team, signed_in):
    dana = team["rep"]
    lead = owned_lead(tenant, dana)
    client = signed_in(dana, tenant)
    response = client.post(url(lead, "recycle"), {"reason": "Not before next year", "expected_owner_id": dana.pk})
    assert response.status_code == 302 and fresh(lead).status == LeadStatus.RECYCLED
    html = client.get(url(lead)).content.decode()
    assert 'data-testid="former-owner"' not in html and "Recycled to nurture: no actions are open" in html
    assert "log" in action_forms(html, lead) and "accept" not in action_forms(html, lead)


def test_a_stranger_and_another_tenant_still_get_the_404(tenant, other_tenant, team, signed_in):
    dana, sam = team["rep"], team["rep2"]
    lead = owned_lead(tenant, dana)
    lead_reassign(lead=lead, actor=Actor.for_user(team["manager"]), to_user=team["ae"], reason="AE asked")
    stranger = signed_in(sam, tenant)  # same team, never owned or touched it
    assert stranger.get(url(lead)).status_code == 404
    assert stranger.post(url(lead, "log"), {"kind": "note", "body": "x", "expected_owner_id": ""}).status_code == 404
    # Dana also works at another tenant: there, this tenant's lead she worked does not exist
    MembershipFactory(tenant=other_tenant, user=dana, role=Role.SDR)
    elsewhere = signed_in(dana, other_tenant)
    assert elsewhere.get(url(lead)).status_code == 404
    assert elsewhere.post(url(lead, "log"), {"kind": "note", "body": "x"}).status_code == 404
    assert not Activity.objects.unscoped().filter(lead=lead).exists()


def test_former_access_is_for_the_lead_page_only(tenant, team):
    dana = team["rep"]
    lead = owned_lead(tenant, dana)
    lead_reassign(lead=lead, actor=Actor.for_user(team["manager"]), to_user=team["rep2"], reason="Rebalance")
    viewer = LeadViewer(tenant=tenant, membership=Membership.objects.unscoped().get(tenant=tenant, user=dana))
    assert lead not in list(lead_list(viewer=viewer))  # not in her lists or queue
    from django.http import Http404

    with pytest.raises(Http404):
        lead_get_for_viewer(viewer=viewer, lead_id=lead.pk)  # nor through the API's path
    assert lead_get_for_viewer(viewer=viewer, lead_id=lead.pk, allow_former=True).former_access is True
    other = LeadFactory(tenant=tenant)
    with pytest.raises(Http404):
        lead_get_for_viewer(viewer=viewer, lead_id=other.pk, allow_former=True)


def test_the_read_only_page_costs_a_bounded_number_of_queries(tenant, team, signed_in, django_assert_max_num_queries):
    dana = team["rep"]
    lead = owned_lead(tenant, dana)
    for i in range(8):
        activity_log(lead=lead, kind="note", actor=Actor.for_user(dana), body=f"Note {i}")
    lead_reassign(lead=lead, actor=Actor.for_user(team["manager"]), to_user=team["rep2"], reason="Rebalance")
    client = signed_in(dana, tenant)
    client.get(url(lead))
    with django_assert_max_num_queries(26):
        assert client.get(url(lead)).status_code == 200


# --- stale actions ------------------------------------------------------------------------------------


def test_the_service_refuses_a_stale_activity_and_writes_nothing(tenant, team):
    dana = team["rep"]
    lead = owned_lead(tenant, dana)
    lead_reassign(lead=lead, actor=Actor.for_user(team["manager"]), to_user=team["rep2"], reason="Rebalance")
    with pytest.raises(ValidationError) as refused:
        activity_log(lead=lead, kind="call", actor=Actor.for_user(dana), outcome="connected",
                     body="Spoke with Peter", expected_owner_id=dana.pk)
    assert "reassigned meanwhile" in refused.value.message_dict["owner"][0]
    assert not Activity.objects.unscoped().filter(lead=lead).exists() and fresh(lead).first_contacted_at is None


def test_a_rep_who_lost_the_lead_meanwhile_gets_the_reason_and_keeps_the_notes(tenant, team, signed_in):
    dana = team["rep"]
    lead = owned_lead(tenant, dana)
    client = signed_in(dana, tenant)
    client.get(url(lead))  # the page as Dana saw it
    lead_reassign(lead=lead, actor=Actor.for_user(team["manager"]), to_user=team["rep2"], reason="Rebalance")
    notes = "Spoke with Peter for 20 minutes; demo next Tuesday, loop in their CTO."
    response = client.post(url(lead, "log"), {"kind": "call", "outcome": "connected", "subject": "Intro",
                                              "body": notes, "expected_owner_id": dana.pk})
    assert response.status_code == 400  # never a 404
    html = response.content.decode()
    assert ("This lead was reassigned meanwhile by Maria Lopez (manager): it now belongs to Sam Rivera (SDR)"
            in html)
    assert "you can no longer act on it" in html
    assert f"{notes}</textarea>" in html and 'value="Intro"' in html  # typed values kept
    assert '<option value="connected" selected>' in html
    assert 'data-testid="not-applicable"' in html and "Log activity</button>" not in html  # nothing to send again
    assert 'data-testid="former-owner"' in html
    assert not Activity.objects.unscoped().filter(lead=lead).exists()


def test_a_manager_gets_the_reason_keeps_the_notes_and_can_apply_them_to_the_lead_as_it_is(tenant, team, signed_in):
    maria, sam = team["manager"], team["rep2"]
    lead = owned_lead(tenant, team["rep"])
    client = signed_in(maria, tenant)
    lead_reassign(lead=lead, actor=Actor.for_user(maria), to_user=sam, reason="Rebalance")  # in another tab
    data = {"kind": "note", "body": "Customer asked for a call back on Friday", "expected_owner_id": team["rep"].pk}
    response = client.post(url(lead, "log"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "it now belongs to Sam Rivera (SDR)" in html and "submit again to apply it" in html
    assert "Customer asked for a call back on Friday</textarea>" in html
    assert f'name="expected_owner_id" value="{sam.pk}"' in html  # the current owner: a new submit is deliberate
    assert not Activity.objects.unscoped().filter(lead=lead).exists()
    again = client.post(url(lead, "log"), data | {"expected_owner_id": sam.pk})
    assert again.status_code == 302 and Activity.objects.unscoped().filter(lead=lead).count() == 1


def test_a_stale_reject_keeps_the_reason_and_note(tenant, team, signed_in):
    maria = team["manager"]
    lead = owned_lead(tenant, team["rep"])
    lead_reassign(lead=lead, actor=Actor.for_user(maria), to_user=team["rep2"], reason="Rebalance")
    response = signed_in(maria, tenant).post(url(lead, "reject"), {
        "reject-reason": "spam", "reject-note": "Obvious bot", "reject-expected_owner_id": team["rep"].pk})
    assert response.status_code == 400 and b"reassigned meanwhile" in response.content
    html = response.content.decode()
    assert '<option value="spam" selected>' in html and "Obvious bot</textarea>" in html
    assert fresh(lead).status == LeadStatus.NEW
