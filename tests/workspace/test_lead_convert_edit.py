"""The lead page's "Convert to an opportunity" and "Edit details": each through its service, errors beside the
fields with nothing written, stale and CSRF-less posts refused, who may act, other reps' and tenants' leads 404."""
from __future__ import annotations

import json
import re

import pytest

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStage, LeadStatus, Opportunity, OpportunityStage
from leads.services.lead_edit import lead_update
from routing.models import SlaClock, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import AccountFactory, LeadFactory, TeamFactory
from tests.support.workspace import owned_lead, person
from workspace.services.lifecycle import lead_qualify

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k", "authority": "VP", "need": "Speed", "timeline": "Q3"}


def url(lead, action=""):
    return f"/leads/{lead.pk}/" + (f"{action}/" if action else "")


def fresh(lead) -> Lead:
    return Lead.objects.unscoped().get(pk=lead.pk)


def convert_data(owner_id, **fields) -> dict:
    return {"convert-expected_owner_id": owner_id if owner_id is not None else "", "convert-name": "",
            "convert-stage": "discovery"} | {f"convert-{k}": v for k, v in fields.items()}


def edit_data(lead, **changes) -> dict:
    """What the page's edit form posts: every field as shown, the version shown, and the user's changes."""
    data = {f"edit-{name}": ("" if getattr(lead, name) is None else getattr(lead, name)) for name in (
        "first_name", "last_name", "email", "phone", "job_title", "company", "company_domain", "company_size",
        "industry", "country", "product_interest")}
    data["edit-expected_updated_at"] = lead.updated_at.isoformat()
    return data | {f"edit-{k}": v for k, v in changes.items()}


def running_clock(lead):
    return SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).first()


# --- Convert ----------------------------------------------------------------------------------------


def test_the_owner_converts_a_lead_into_an_opportunity(tenant, org, signed_in):
    rep = org["rep"]
    account = AccountFactory(tenant=tenant, domain="initech.example", name="Initech")
    lead = owned_lead(tenant, rep, first_name="Peter", last_name="Gibbons", company="Initech", account=account)
    client = signed_in(rep, tenant)
    page = client.get(url(lead)).content.decode()
    assert 'data-action="convert"' in page
    assert 'value="Initech – Peter Gibbons"' in page and '<label for="id_convert-stage">' in page

    response = client.post(url(lead, "convert"), convert_data(rep.pk, name="Initech – Peter Gibbons", stage="demo"))

    assert response.status_code == 302 and response["Location"] == url(lead)
    opportunity = Opportunity.objects.unscoped().get(lead=lead)
    assert (opportunity.name, opportunity.stage, opportunity.owner_id, opportunity.account_id) == (
        "Initech – Peter Gibbons", OpportunityStage.DEMO, rep.pk, account.pk)
    lead = fresh(lead)
    assert (lead.status, lead.stage) == (LeadStatus.CONVERTED, LeadStage.OPPORTUNITY) and running_clock(lead) is None
    page = client.get(url(lead)).content.decode()
    assert "Lead converted: opportunity “Initech – Peter Gibbons” (Demo)." in page
    assert 'data-testid="opportunity">Initech – Peter Gibbons' in page
    assert "Stopped: converted" in page and "no actions are open" in page
    assert "Stage MQL → Opportunity: converted by rep@acme.test (SDR)" in page  # the stage change on the timeline


def test_converting_twice_keeps_one_opportunity(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    assert client.post(url(lead, "convert"), convert_data(rep.pk)).status_code == 302
    again = client.post(url(lead, "convert"), convert_data(rep.pk, name="Second"))
    assert again.status_code == 302
    assert Opportunity.objects.unscoped().filter(lead=lead).count() == 1
    assert AuditEvent.objects.unscoped().filter(action="lead.converted").count() == 1


def test_converting_an_sql_accepts_its_opportunity(tenant, org, signed_in):
    aes = TeamFactory(tenant=tenant, name="AEs")
    ae = person(tenant, role=Role.AE, team=aes)
    lead = owned_lead(tenant, org["rep"])
    handed_off = lead_qualify(lead=lead, actor=Actor.for_user(org["rep"]), **BANT)
    assert handed_off.owner_id == ae.pk
    client = signed_in(ae, tenant)
    page = client.get(url(lead)).content.decode()
    assert f'value="{handed_off.name}"' in page and "Accept and convert" in page

    response = client.post(url(lead, "convert"), convert_data(ae.pk, name=handed_off.name))

    assert response.status_code == 302
    assert list(Opportunity.objects.unscoped().filter(lead=lead).values_list("pk", flat=True)) == [handed_off.pk]
    assert Opportunity.objects.unscoped().get(pk=handed_off.pk).accepted_at is not None
    assert fresh(lead).status == LeadStatus.CONVERTED


def test_a_manager_converts_a_team_lead_for_its_owner(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    client = signed_in(org["manager"], tenant)
    assert b'data-action="convert"' in client.get(url(lead)).content
    assert client.post(url(lead, "convert"), convert_data(org["rep"].pk)).status_code == 302
    assert Opportunity.objects.unscoped().get(lead=lead).owner_id == org["rep"].pk


def test_marketing_ops_and_unassigned_leads_get_no_convert_action(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    marketing = signed_in(person(tenant, role=Role.MARKETING_OPS), tenant)
    assert b'data-action="convert"' not in marketing.get(url(lead)).content
    assert marketing.post(url(lead, "convert"), convert_data(org["rep"].pk)).status_code == 404
    unassigned = LeadFactory(tenant=tenant, stage=LeadStage.MQL)
    manager = signed_in(org["manager"], tenant)
    assert b'data-action="convert"' not in manager.get(url(unassigned)).content
    assert manager.post(url(unassigned, "convert"), convert_data(None)).status_code == 404
    assert not Opportunity.objects.unscoped().exists()


@pytest.mark.parametrize("fields,error_id", [
    ({"stage": "won"}, "id_convert-stage_error"),
    ({"stage": ""}, "id_convert-stage_error"),
    ({"name": "x" * 201}, "id_convert-name_error"),
])
def test_bad_convert_input_is_a_field_error_and_writes_nothing(tenant, org, signed_in, fields, error_id):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "convert"), convert_data(rep.pk, **fields))
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="{error_id}"' in html and 'data-action="convert" open' in html and "autofocus" in html
    assert fresh(lead).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()


def test_converting_a_lead_reassigned_meanwhile_is_refused(tenant, org, signed_in):
    lead = owned_lead(tenant, org["manager"])
    client = signed_in(org["manager"], tenant)
    lead_assign(lead=lead, owner=org["rep2"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    response = client.post(url(lead, "convert"), convert_data(org["manager"].pk))
    assert response.status_code == 400 and b"reassigned meanwhile" in response.content
    assert fresh(lead).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()


def test_converting_a_closed_lead_is_refused_with_the_reason(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    Lead.objects.unscoped().filter(pk=lead.pk).update(status=LeadStatus.UNQUALIFIED)
    response = signed_in(rep, tenant).post(url(lead, "convert"), convert_data(rep.pk))
    assert response.status_code == 400 and b"An unqualified lead cannot be converted." in response.content
    assert not Opportunity.objects.unscoped().exists()


def test_convert_other_reps_and_other_tenants_leads_are_404(tenant, other_tenant, org, signed_in):
    theirs = owned_lead(tenant, org["rep2"])
    assert signed_in(org["rep"], tenant).post(url(theirs, "convert"), convert_data(org["rep2"].pk)).status_code == 404
    foreign = LeadFactory(tenant=other_tenant)
    admin = signed_in(person(tenant, role=Role.ADMIN), tenant)
    assert admin.post(url(foreign, "convert"), convert_data(None)).status_code == 404
    assert not Opportunity.objects.unscoped().exists()


def test_csrf_less_convert_is_refused(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant, enforce_csrf_checks=True).post(url(lead, "convert"), convert_data(rep.pk))
    assert response.status_code == 403
    assert fresh(lead).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()


# --- Edit details -----------------------------------------------------------------------------------


def test_the_edit_form_shows_the_current_details_with_labels(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, job_title="CTO", product_interest="Routing")
    html = signed_in(rep, tenant).get(url(lead)).content.decode()
    assert 'data-action="edit"' in html and 'hx-post="/leads/' in html
    assert '<label for="id_edit-job_title">Job title</label>' in html and 'value="CTO"' in html
    assert '<label for="id_edit-product_interest">Product interest</label>' in html
    assert f'name="edit-expected_updated_at" value="{lead.updated_at.isoformat()}"' in html


def test_editing_saves_only_the_changed_fields_through_the_service(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, job_title="CTO", country="Germany")
    client = signed_in(rep, tenant)
    response = client.post(url(lead, "edit"), edit_data(lead, job_title="  Chief   Technology Officer ",
                                                        product_interest="Routing", phone="030 1234567"))
    assert response.status_code == 302 and response["Location"] == url(lead)
    edited = fresh(lead)
    assert (edited.job_title, edited.product_interest, edited.phone) == (
        "Chief Technology Officer", "Routing", "+49301234567")  # normalised like intake (German number)
    assert sorted(edited.edited_fields) == ["job_title", "phone", "product_interest"]
    event = AuditEvent.objects.unscoped().get(action="lead.updated", object_id=str(lead.pk))
    assert event.changes["job_title"] == ["CTO", "Chief Technology Officer"] and event.actor_user_id == rep.pk
    page = client.get(url(lead)).content.decode()
    assert "Details saved." in page and "Chief Technology Officer" in page


def test_saving_unchanged_details_writes_nothing(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    response = client.post(url(lead, "edit"), edit_data(lead))
    assert response.status_code == 302 and fresh(lead).updated_at == lead.updated_at
    assert not AuditEvent.objects.unscoped().filter(action="lead.updated").exists()
    assert "Nothing to save" in client.get(url(lead)).content.decode()


@pytest.mark.parametrize("changes,field,message", [
    ({"email": "taken@acme.example"}, "email", "Another lead of this tenant already has this email."),
    ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    ({"phone": "call me maybe"}, "phone", ""),
    ({"company_domain": "not a domain!"}, "company_domain", "Enter a valid domain"),
    ({"company_size": "-5"}, "company_size", ""),
    ({"email": "", "phone": ""}, "email", "A lead needs an email or a phone number."),
])
def test_bad_edits_are_errors_beside_the_fields_and_write_nothing(tenant, org, signed_in, changes, field, message):
    rep = org["rep"]
    LeadFactory(tenant=tenant, email="taken@acme.example")
    lead = owned_lead(tenant, rep, phone="")
    response = signed_in(rep, tenant).post(url(lead, "edit"), edit_data(lead, job_title="New title", **changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_edit-{field}_error"><p class="field-error">{message}' in html
    assert 'data-action="edit" open' in html and 'aria-invalid="true"' in html
    assert fresh(lead).job_title == lead.job_title and fresh(lead).edited_fields == []
    assert not AuditEvent.objects.unscoped().filter(action="lead.updated").exists()


def test_an_edit_of_a_lead_changed_meanwhile_is_refused(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, job_title="CTO")
    shown = edit_data(lead, job_title="Head of IT")
    lead_update(lead=lead, data={"job_title": "VP Engineering"}, actor=SYSTEM)  # someone else, meanwhile
    response = signed_in(rep, tenant).post(url(lead, "edit"), shown)
    assert response.status_code == 400
    assert b"This lead was changed meanwhile" in response.content
    assert fresh(lead).job_title == "VP Engineering"


@pytest.mark.parametrize("token", ["", "yesterday"])
def test_an_edit_without_a_valid_version_is_refused(tenant, org, signed_in, token):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    data = edit_data(lead, job_title="Head of IT") | {"edit-expected_updated_at": token}
    response = signed_in(rep, tenant).post(url(lead, "edit"), data)
    assert response.status_code == 400 and b"The page is out of date; reload it." in response.content
    assert fresh(lead).job_title == lead.job_title


def test_an_htmx_edit_with_errors_answers_400_with_the_form_to_swap(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).post(url(lead, "edit"), edit_data(lead, email="nope"),
                                           HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    html = response.content.decode()
    form = re.search(r'<form [^>]*id="edit-form".*?</form>', html, re.S).group(0)
    assert 'hx-target="this" hx-select="#edit-form"' in form  # htmx swaps this form out of the page
    assert "data-swap-invalid" in form and "hx-on" not in form  # ...even though a 400 (app.js; no inline JS: CSP)
    assert 'id="id_edit-email_error"' in form and "autofocus" in form
    assert fresh(lead).email == lead.email


def test_an_htmx_edit_that_saves_loads_the_page_content_in_place(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    client = signed_in(rep, tenant)
    response = client.post(url(lead, "edit"), edit_data(lead, job_title="CTO"), HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert json.loads(response["HX-Location"]) == {"path": url(lead), "target": "#content", "select": "#content",
                                                   "swap": "outerHTML"}
    assert fresh(lead).job_title == "CTO"
    assert "Details saved." in client.get(url(lead), HTTP_HX_REQUEST="true").content.decode()


def test_a_closed_lead_can_still_be_corrected(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    Lead.objects.unscoped().filter(pk=lead.pk).update(status=LeadStatus.CONVERTED)
    lead = fresh(lead)
    client = signed_in(rep, tenant)
    assert b'data-action="edit"' in client.get(url(lead)).content
    assert client.post(url(lead, "edit"), edit_data(lead, last_name="Corrected")).status_code == 302
    assert fresh(lead).last_name == "Corrected"


def test_edit_other_reps_and_other_tenants_leads_are_404(tenant, other_tenant, org, signed_in):
    theirs = owned_lead(tenant, org["rep2"], job_title="CTO")
    response = signed_in(org["rep"], tenant).post(url(theirs, "edit"), edit_data(theirs, job_title="Mine"))
    assert response.status_code == 404 and fresh(theirs).job_title == "CTO"
    foreign = LeadFactory(tenant=other_tenant, job_title="CTO")
    admin = signed_in(person(tenant, role=Role.ADMIN), tenant)
    assert admin.post(url(foreign, "edit"), edit_data(foreign, job_title="Ours")).status_code == 404
    assert fresh(foreign).job_title == "CTO"


def test_csrf_less_edit_is_refused(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, job_title="CTO")
    client = signed_in(rep, tenant, enforce_csrf_checks=True)
    assert client.post(url(lead, "edit"), edit_data(lead, job_title="Hacked")).status_code == 403
    assert fresh(lead).job_title == "CTO"
