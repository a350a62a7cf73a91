"""Actions that fit the lead's state: no Qualify on a qualified lead, no Accept on an accepted one, Accept on an
SQL says it converts (and the flash says so), closed leads explain why nothing is offered; and the BANT card."""
from __future__ import annotations

import re
from html import unescape

import pytest

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStatus, Opportunity
from tests.support.factories import MembershipFactory, TeamFactory, UserFactory
from tests.support.workspace import owned_lead
from workspace.services.lifecycle import lead_accept, lead_qualify

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k", "authority": "VP Sales", "need": "Routing in minutes", "timeline": "Q3"}
EVERYTHING = ["log", "accept", "reject", "qualify", "convert", "disqualify", "recycle"]


def url(lead, action=""):
    return f"/leads/{lead.pk}/" + (f"{action}/" if action else "")


def offered(html: str) -> list[str]:
    """The actions of the Actions card, in order (edit, enrol, stop and the deal's close live in their own cards)."""
    start, end = html.index('data-testid="actions"'), html.index('<div class="lead-main">')
    bant = html.find('data-testid="bant"', start, end)  # the opportunity card's close forms are its own card's
    card = html[start:bant if bant != -1 else end]
    return re.findall(r'<details class="action" data-action="([a-z-]+)"', card)


@pytest.fixture
def ae(tenant, org):
    user = UserFactory(username="ana@acme.test", first_name="Ana", last_name="Ruiz")
    MembershipFactory(tenant=tenant, user=user, role=Role.AE, team=TeamFactory(tenant=tenant, name="AEs"))
    return user


def sql_for(tenant, org, ae) -> tuple[Lead, Opportunity]:
    lead = owned_lead(tenant, org["rep"], company="Initech")
    opportunity = lead_qualify(lead=lead, actor=Actor.for_user(org["rep"]), **BANT)
    assert opportunity.owner_id == ae.pk
    return Lead.objects.unscoped().get(pk=lead.pk), opportunity


def test_a_new_lead_offers_every_sales_action_to_its_owner(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    html = signed_in(org["rep"], tenant).get(url(lead)).content.decode()
    assert offered(html) == EVERYTHING
    assert 'data-testid="bant"' not in html  # nothing to show yet


def test_a_manager_also_gets_reassign_but_not_on_a_closed_lead(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    client = signed_in(org["manager"], tenant)
    assert offered(client.get(url(lead)).content.decode()) == EVERYTHING + ["reassign"]
    Lead.objects.unscoped().filter(pk=lead.pk).update(status=LeadStatus.UNQUALIFIED, rejection_reason="no_budget")
    html = client.get(url(lead)).content.decode()
    assert offered(html) == ["log"]
    assert "Disqualified: no budget. You can still log what happens, but no actions are open on the lead." in html


def test_an_accepted_lead_offers_no_accept_and_a_second_accept_is_refused(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    page = client.get(url(lead)).content.decode()  # the page in a second tab, before accepting
    assert "accept" in offered(page)
    assert client.post(url(lead, "accept"), {"expected_owner_id": rep.pk}).status_code == 302
    assert "accept" not in offered(client.get(url(lead)).content.decode())
    again = client.post(url(lead, "accept"), {"expected_owner_id": rep.pk})
    assert again.status_code == 400 and "This lead is already accepted." in again.content.decode()


def test_a_qualified_lead_offers_no_qualify_and_a_second_qualify_is_refused(tenant, org, ae, signed_in):
    lead, opportunity = sql_for(tenant, org, ae)
    client = signed_in(ae, tenant)
    html = client.get(url(lead)).content.decode()
    assert "qualify" not in offered(html) and "accept" in offered(html)
    again = client.post(url(lead, "qualify"), BANT | {"expected_owner_id": ae.pk})
    assert again.status_code == 400
    assert f"This lead is already qualified: its opportunity “{opportunity.name}” is with Ana Ruiz." in \
        again.content.decode()
    assert Opportunity.objects.unscoped().filter(lead=lead).count() == 1


def test_accepting_an_sql_says_it_converts_and_the_flash_names_the_opportunity(tenant, org, ae, signed_in):
    lead, opportunity = sql_for(tenant, org, ae)
    client = signed_in(ae, tenant)
    html = client.get(url(lead)).content.decode()
    assert "<summary>Accept and convert</summary>" in html
    assert f"Accepting this SQL converts it: the opportunity “{opportunity.name}” is accepted" in html
    response = client.post(url(lead, "accept"), {"expected_owner_id": ae.pk}, follow=True)
    page = response.content.decode()
    assert f"Lead accepted and converted: opportunity “{opportunity.name}” is yours." in page
    lead = Lead.objects.unscoped().get(pk=lead.pk)
    assert lead.status == LeadStatus.CONVERTED
    assert offered(page) == [] and "Converted into the opportunity “Initech”: no actions are open" in page


def test_a_manager_accepting_for_the_ae_is_told_whose_opportunity_it_is(tenant, org, ae, signed_in):
    lead, opportunity = sql_for(tenant, org, ae)
    admin = UserFactory(username="boss@acme.test")
    MembershipFactory(tenant=tenant, user=admin, role=Role.ADMIN)
    response = signed_in(admin, tenant).post(url(lead, "accept"), {"expected_owner_id": ae.pk}, follow=True)
    assert f"opportunity “{opportunity.name}” is Ana Ruiz's." in unescape(response.content.decode())


def test_the_bant_card_shows_the_answers_and_the_opportunity_with_its_owner(tenant, org, ae, signed_in):
    lead, opportunity = sql_for(tenant, org, ae)
    html = signed_in(ae, tenant).get(url(lead)).content.decode()
    card = html[html.index('data-testid="bant"'):]
    card = card[:card.index("</section>")]
    for key, value in BANT.items():
        assert f'data-testid="bant-{key}">{value}<' in card
    assert f'data-testid="opportunity">{opportunity.name} <span class="badge badge-status">Discovery</span>' in card
    assert 'data-testid="opportunity-owner">Ana Ruiz<' in card and "Not yet" in card
    lead_accept(lead=lead, actor=Actor.for_user(ae))
    card = signed_in(ae, tenant).get(url(lead)).content.decode()
    assert "Not yet" not in card[card.index('data-testid="bant"'):]


def test_a_converted_or_recycled_lead_says_why_and_offers_nothing(tenant, org, signed_in):
    rep = org["rep"]
    recycled = owned_lead(tenant, rep)
    Lead.objects.unscoped().filter(pk=recycled.pk).update(status=LeadStatus.RECYCLED)
    html = signed_in(rep, tenant).get(url(recycled)).content.decode()
    assert offered(html) == ["log"] and "Nurture works it, and routing brings it back to sales" in html
    converted = owned_lead(tenant, rep)
    Lead.objects.unscoped().filter(pk=converted.pk).update(status=LeadStatus.CONVERTED)
    html = signed_in(rep, tenant).get(url(converted)).content.decode()
    assert offered(html) == [] and 'data-testid="closed-note"' in html
