"""The log-activity form on the lead page: the tenant's outcome taxonomy as grouped choices (never another
tenant's, never a switched-off one), what the flash says (contact or attempt), and an outcome that does not fit
the kind refused beside the field with the notes kept."""
from __future__ import annotations

import pytest

from leads.activity_outcomes import activity_outcomes_seed
from leads.models import Activity, ActivityOutcome
from routing.models import SlaClock
from tests.support.workspace import owned_lead

pytestmark = pytest.mark.django_db


def running(lead):
    return SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).first()


@pytest.fixture
def rep(tenant, org):
    activity_outcomes_seed(tenant_id=tenant.pk)
    return org["rep"]


def test_the_log_form_offers_the_tenants_outcomes_grouped_by_kind(tenant, other_tenant, rep, signed_in):
    ActivityOutcome.objects.unscoped().filter(tenant=tenant, code="busy").update(label="Line busy")
    ActivityOutcome.objects.unscoped().filter(tenant=tenant, code="wrong_number").update(is_active=False)
    ActivityOutcome.objects.unscoped().create(tenant=other_tenant, code="theirs", label="Globex only", kind="call")
    lead = owned_lead(tenant, rep)
    html = signed_in(rep, tenant).get(f"/leads/{lead.pk}/").content.decode()
    select = html[html.index('<select name="outcome"'):]
    select = select[:select.index("</select>")]
    assert '<option value="" selected>No outcome</option>' in select
    assert '<optgroup label="Calls">' in select and '<optgroup label="Emails">' in select
    assert '<option value="connected">Connected (contact)</option>' in select
    assert '<option value="busy">Line busy</option>' in select
    assert "wrong_number" not in select and "theirs" not in select


def test_logging_no_answer_on_the_page_says_it_was_an_attempt(tenant, rep, signed_in):
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    response = client.post(f"/leads/{lead.pk}/log/", {"kind": "call", "outcome": "no_answer", "body": "Rang twice",
                                                      "expected_owner_id": rep.pk}, follow=True)
    assert "Call logged. No answer: counted as an attempt." in response.content.decode()
    assert running(lead) is not None
    response = client.post(f"/leads/{lead.pk}/log/", {"kind": "call", "outcome": "connected",
                                                      "expected_owner_id": rep.pk}, follow=True)
    assert "Call logged. Connected: counts as contact." in response.content.decode()
    assert running(lead) is None


def test_an_outcome_not_of_the_taxonomy_is_a_field_error_on_the_page(tenant, rep, signed_in):
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(f"/leads/{lead.pk}/log/", {
        "kind": "email", "outcome": "connected", "body": "Sent the deck", "expected_owner_id": rep.pk})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_outcome_error"' in html and "“Connected” is not an outcome of an email." in html
    assert "Sent the deck" in html  # the notes are kept
    assert not Activity.objects.unscoped().filter(lead=lead).exists()
