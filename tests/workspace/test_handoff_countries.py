"""Qualifying hands a lead to the AE of its territory however its country was typed; a handoff that cannot
place the lead says so to the SDR (page and API) and tells the SDR's manager, never reporting success."""
from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStage, Opportunity
from routing.defaults import routing_defaults_create
from routing.models import Notification, Territory, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import TeamFactory
from tests.support.intake import post_json
from tests.support.lead_api import BANT
from tests.support.workspace import person
from workspace.services.handoff import UNPLACED_KIND

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales(tenant):
    """An SDR team with its manager, an AE team whose territory was typed "United States", an admin."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdrs, aes = TeamFactory(tenant=tenant, name="SDRs"), TeamFactory(tenant=tenant, name="AEs")
    manager = person(tenant, role=Role.MANAGER, team=sdrs, username="boss@acme.test")
    sdrs.manager = manager
    sdrs.save(update_fields=["manager"])
    people = {"manager": manager, "sdr": person(tenant, team=sdrs, username="sdr@acme.test"),
              "ae": person(tenant, role=Role.AE, team=aes, username="ae@acme.test"),
              "admin": person(tenant, role=Role.ADMIN, username="admin@acme.test"), "team": sdrs}
    Territory.objects.unscoped().create(tenant=tenant, name="North America", team=aes, countries=["United States"])
    return people


def captured_for(client, form, sdr, team=None, **fields) -> Lead:
    """A lead through the real intake, then owned by the SDR the way routing gives it."""
    response = post_json(client, {"company": "Initech", "first_name": "Peter", **fields}, form=form)
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    Lead.objects.unscoped().filter(pk=lead.pk).update(stage=LeadStage.MQL)
    lead_assign(lead=lead, owner=sdr, actor=SYSTEM, trigger=Trigger.CAPTURE, team=team)
    return Lead.objects.unscoped().get(pk=lead.pk)


def qualify_api(client_for, user, lead, **extra):
    return client_for(user).post(f"/api/v1/leads/{lead.pk}/qualify/", {**BANT, **extra}, format="json")


@pytest.mark.parametrize("typed", ["US", "USA", "United States"])
def test_every_spelling_through_intake_reaches_the_territorys_ae_on_qualify(client, lead_form, sales, client_for,
                                                                           typed):
    lead = captured_for(client, lead_form, sales["sdr"], email="peter@initech.example", country=typed)
    assert lead.country == "US"
    response = qualify_api(client_for, sales["sdr"], lead)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["opportunity"]["owner"]["id"] == sales["ae"].pk and body["lead"]["owner"]["id"] == sales["ae"].pk
    assert body["handoff"]["placed"] is True and "territory North America" in body["handoff"]["reason"]
    assert body["handoff"]["message"].startswith("Lead qualified and handed off to ")
    assert not Notification.objects.unscoped().filter(kind=UNPLACED_KIND).exists()


def test_a_handoff_without_a_matching_ae_is_reported_over_the_api_and_tells_the_manager(
        client, lead_form, sales, client_for, other_tenant):
    their_admin = person(other_tenant, role=Role.ADMIN)
    lead = captured_for(client, lead_form, sales["sdr"], sales["team"], email="peter@initech.example",
                        country="France")
    response = qualify_api(client_for, sales["sdr"], lead, expected_owner_id=sales["sdr"].pk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["handoff"]["placed"] is False
    assert body["handoff"]["reason"].startswith("No territory covers this lead (country FR")
    assert body["handoff"]["message"] == ("Qualified, but no account executive matches: sent to your manager's "
                                          f"Unassigned queue — {body['handoff']['reason']}")
    assert body["opportunity"]["owner"] is None and body["lead"]["owner"] is None and body["lead"]["stage"] == "sql"
    stored = Lead.objects.unscoped().get(pk=lead.pk)
    assert stored.owner_id is None and stored.team_id == sales["team"].pk  # the SDR team's Unassigned queue
    notes = Notification.objects.unscoped().filter(kind=UNPLACED_KIND)
    assert [(n.user_id, n.lead_id, n.tenant_id) for n in notes] == [(sales["manager"].pk, lead.pk, lead.tenant_id)]
    note = notes.get()
    assert note.title == "Qualified lead needs an AE: Peter (Initech)" and note.email_due
    assert f"/leads/{lead.pk}/" in note.body and "No territory covers this lead" in note.body
    assert note.body.startswith("Peter (Initech) was qualified by sdr@acme.test, but no account executive matches")
    assert not Notification.objects.unscoped().filter(kind=UNPLACED_KIND, user=their_admin).exists()

    again = qualify_api(client_for, sales["manager"], lead)  # qualifying again: same answer, no second notice
    assert again.status_code == 200 and again.json()["handoff"] == body["handoff"]
    assert Notification.objects.unscoped().filter(kind=UNPLACED_KIND).count() == 1
    assert Opportunity.objects.unscoped().filter(lead=lead).count() == 1


def test_the_lead_page_tells_the_sdr_the_handoff_found_no_ae(client, lead_form, sales, tenant):
    lead = captured_for(client, lead_form, sales["sdr"], email="peter@initech.example", country="Narnia")
    assert lead.country == "" and lead.attributes["country_as_sent"] == "Narnia"
    browser = Client()
    browser.force_login(sales["sdr"])
    session = browser.session
    session[SESSION_TENANT_KEY] = tenant.pk
    session.save()
    response = browser.post(f"/leads/{lead.pk}/qualify/", {**BANT, "expected_owner_id": sales["sdr"].pk})
    assert response.status_code == 302
    messages = list(get_messages(response.wsgi_request))
    assert [m.tags for m in messages] == ["warning"]  # not shown as a success
    flashed = [str(m) for m in messages]
    assert len(flashed) == 1 and "handed off" not in flashed[0]
    assert ("Qualified, but no account executive matches: sent to your manager&#x27;s Unassigned queue — "
            "No territory covers this lead (country blank" in flashed[0]) or (
        "Qualified, but no account executive matches: sent to your manager's Unassigned queue — "
        "No territory covers this lead (country blank" in flashed[0])
    assert Notification.objects.unscoped().filter(kind=UNPLACED_KIND, user=sales["manager"], lead=lead).exists()


def test_an_sdr_without_a_manager_has_the_tenant_admins_told(client, lead_form, sales, client_for):
    loner = person(lead_form.tenant, username="loner@acme.test")
    lead = captured_for(client, lead_form, loner, email="peter@initech.example", country="DE")
    assert qualify_api(client_for, loner, lead).json()["handoff"]["placed"] is False
    assert set(Notification.objects.unscoped().filter(kind=UNPLACED_KIND).values_list("user_id", flat=True)) == {
        sales["admin"].pk}
