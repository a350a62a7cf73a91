"""Bounced addresses: a hard bounce flags the tenant's leads with that address for review (lead page banner, the
manager's "Bounced addresses" list); correcting the email clears the flag, dismissing it is audited; soft bounces
flag nothing; other roles, teams and tenants do not see the list or the action."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import Lead
from leads.services.lead_edit import lead_update
from nurture.models import SuppressionReason
from nurture.services.tracking import bounce_record, suppression_add
from tests.support.factories import LeadFactory, TeamFactory, api_key_for
from tests.support.nurture import NurtureSettingsFactory, sent_message
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db
BOUNCED = "/manager/bounced/"


def fresh(lead) -> Lead:
    return Lead.objects.unscoped().get(pk=lead.pk)


def page(client, lead) -> str:
    response = client.get(f"/leads/{lead.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_bounce_callback_flags_the_lead_with_the_date_and_reason(tenant):
    row = NurtureSettingsFactory(tenant=tenant)
    secret = row.bounce_secret_generate()
    row.save(update_fields=["bounce_secret"])
    message = sent_message(tenant=tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post(f"/api/v1/nurture/bounces/{tenant.slug}/", {
        "email": message.to_email, "type": "hard", "message_id": str(message.pk),
        "reason": "550 5.1.1 user unknown"}, format="json")
    assert response.status_code == 200, response.content
    lead = fresh(message.lead)
    assert lead.email_bounced_at is not None and "550 5.1.1" in lead.email_bounce_note
    [event] = AuditEvent.objects.unscoped().filter(action="lead.email_bounced", object_id=str(lead.pk))
    assert event.metadata["email"] == lead.email
    api_key_client = APIClient()
    api_key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(tenant)[1]}")
    body = api_key_client.get(f"/api/v1/leads/{lead.pk}/").json()  # integrations see the flag too
    assert body["email_bounced_at"] is not None and "550 5.1.1" in body["email_bounce_note"]


def test_a_hard_bounce_flags_the_address_lead_only_and_a_soft_bounce_flags_nothing(tenant, other_tenant):
    bounced = LeadFactory(tenant=tenant, email="gone@initech.example")
    other = LeadFactory(tenant=tenant, email="fine@initech.example")
    elsewhere = LeadFactory(tenant=other_tenant, email="gone@initech.example")
    soft = LeadFactory(tenant=tenant, email="full@initech.example")
    bounce_record(tenant=tenant, email="full@initech.example", kind="soft")
    bounce_record(tenant=tenant, email="GONE@initech.example", kind="hard", reason="no such user")
    assert fresh(bounced).email_bounced_at is not None
    assert fresh(other).email_bounced_at is None and fresh(soft).email_bounced_at is None
    assert fresh(elsewhere).email_bounced_at is None  # another tenant's lead with the same address


def test_a_hard_bounce_of_an_already_unsubscribed_address_still_flags_its_lead(tenant):
    message = sent_message(tenant=tenant)
    suppression_add(tenant=tenant, email=message.to_email, reason=SuppressionReason.UNSUBSCRIBED,
                    actor=SYSTEM)
    bounce_record(tenant=tenant, email=message.to_email, kind="hard", message_id=str(message.pk))
    assert fresh(message.lead).email_bounced_at is not None


def test_a_retried_report_after_a_dismissal_does_not_flag_again(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"], email="gone@initech.example")
    bounce_record(tenant=tenant, email=lead.email, kind="hard")
    response = signed_in(org["rep"], tenant).post(f"/leads/{lead.pk}/dismiss-bounce/")
    assert response.status_code == 302
    bounce_record(tenant=tenant, email=lead.email, kind="hard")  # the provider retries the same report
    assert fresh(lead).email_bounced_at is None


def test_the_lead_page_shows_the_banner_with_fix_and_dismiss(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"], email="gone@initech.example")
    when = timezone.now() - timedelta(days=2)
    Lead.objects.unscoped().filter(pk=lead.pk).update(email_bounced_at=when, email_bounce_note="Hard bounce: 550")
    html = page(signed_in(org["rep"], tenant), lead)
    assert 'data-testid="bounce-banner"' in html
    assert f"Email bounced on {when:%b} {when.day}, {when.year} — check the address." in html
    assert f'action="/leads/{lead.pk}/dismiss-bounce/"' in html and f'href="/leads/{lead.pk}/?open=edit#edit-form"' in html
    unflagged = owned_lead(tenant, org["rep"])
    assert 'data-testid="bounce-banner"' not in page(signed_in(org["rep"], tenant), unflagged)


def test_fix_the_email_opens_the_edit_form(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"])
    html = signed_in(org["rep"], tenant).get(f"/leads/{lead.pk}/?open=edit").content.decode()
    assert '<details class="action" data-action="edit" open>' in html


def test_dismissing_clears_the_flag_and_is_audited_once(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"], email="gone@initech.example")
    bounce_record(tenant=tenant, email=lead.email, kind="hard")
    client = signed_in(org["rep"], tenant)
    assert client.post(f"/leads/{lead.pk}/dismiss-bounce/").status_code == 302
    assert client.post(f"/leads/{lead.pk}/dismiss-bounce/").status_code == 302  # a second click: nothing to do
    assert fresh(lead).email_bounced_at is None
    [event] = AuditEvent.objects.unscoped().filter(action="lead.email_bounce_dismissed", object_id=str(lead.pk))
    assert event.actor_user_id == org["rep"].pk and event.changes["email_bounced_at"][1] is None
    assert 'data-testid="bounce-banner"' not in page(client, lead)


def test_editing_the_email_clears_the_flag(tenant, org):
    lead = owned_lead(tenant, org["rep"], email="gone@initech.example")
    bounce_record(tenant=tenant, email=lead.email, kind="hard")
    lead_update(lead=fresh(lead), data={"email": "peter@initech.example"}, actor=Actor.for_user(org["rep"]))
    assert fresh(lead).email_bounced_at is None and fresh(lead).email_bounce_note == ""
    event = AuditEvent.objects.unscoped().filter(action="lead.updated", object_id=str(lead.pk)).latest("id")
    assert event.changes["email_bounced_at"][1] is None
    lead_update(lead=fresh(lead), data={"first_name": "Pete"}, actor=Actor.for_user(org["rep"]))  # no flag: no change
    assert fresh(lead).email_bounced_at is None


def test_another_reps_lead_cannot_be_dismissed_and_marketing_ops_get_no_button(tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"], email="gone@initech.example")
    bounce_record(tenant=tenant, email=lead.email, kind="hard")
    assert signed_in(org["rep2"], tenant).post(f"/leads/{lead.pk}/dismiss-bounce/").status_code == 404
    ops = person(tenant, role=Role.MARKETING_OPS)
    html = page(signed_in(ops, tenant), lead)
    assert 'data-testid="bounce-banner"' in html and "dismiss-bounce" not in html
    assert signed_in(ops, tenant).post(f"/leads/{lead.pk}/dismiss-bounce/").status_code == 404
    assert fresh(lead).email_bounced_at is not None


def test_another_tenants_member_cannot_dismiss(tenant, other_tenant, org, signed_in):
    lead = owned_lead(tenant, org["rep"], email="gone@initech.example")
    bounce_record(tenant=tenant, email=lead.email, kind="hard")
    stranger = person(other_tenant, role=Role.ADMIN)
    assert signed_in(stranger, other_tenant).post(f"/leads/{lead.pk}/dismiss-bounce/").status_code == 404
    assert fresh(lead).email_bounced_at is not None


def test_the_manager_list_shows_the_scopes_flagged_leads_with_owner_and_date(tenant, org, signed_in,
                                                                             django_assert_max_num_queries):
    west = TeamFactory(tenant=tenant, name="West")
    west_rep = person(tenant, team=west)
    mine = [owned_lead(tenant, org["rep"], email=f"gone{i}@initech.example") for i in range(3)]
    theirs = owned_lead(tenant, west_rep, email="west@initech.example")
    clean = owned_lead(tenant, org["rep"], email="fine@initech.example")
    for lead in [*mine, theirs]:
        bounce_record(tenant=tenant, email=lead.email, kind="hard")
    client = signed_in(org["manager"], tenant)
    with django_assert_max_num_queries(12):
        html = client.get(BOUNCED).content.decode()
    assert all(f'data-lead-id="{lead.pk}"' in html for lead in mine)
    assert f'data-lead-id="{theirs.pk}"' not in html and f'data-lead-id="{clean.pk}"' not in html  # another team's
    assert org["rep"].get_username() in html and 'href="/manager/bounced/"' in html
    admin = person(tenant, role=Role.ADMIN)
    assert f'data-lead-id="{theirs.pk}"' in signed_in(admin, tenant).get(BOUNCED).content.decode()


def test_the_manager_list_reads_in_the_same_queries_whatever_its_size(tenant, org, signed_in, django_assert_num_queries):
    client = signed_in(org["manager"], tenant)
    owned_lead(tenant, org["rep"], email="a@initech.example", email_bounced_at=timezone.now())
    client.get(BOUNCED)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get(BOUNCED)
    for i in range(8):
        owned_lead(tenant, org["rep2"], email=f"b{i}@initech.example", email_bounced_at=timezone.now())
    with CaptureQueriesContext(connection) as many:
        html = client.get(BOUNCED).content.decode()
    assert html.count("data-lead-id=") == 9
    assert len(many.captured_queries) == len(one.captured_queries)


def test_reps_and_marketing_ops_cannot_open_the_list_and_other_tenants_leads_are_not_in_it(
        tenant, other_tenant, org, signed_in):
    assert signed_in(org["rep"], tenant).get(BOUNCED).status_code == 403
    assert signed_in(person(tenant, role=Role.MARKETING_OPS), tenant).get(BOUNCED).status_code == 403
    theirs = LeadFactory(tenant=other_tenant, email="gone@globex.example")
    bounce_record(tenant=other_tenant, email=theirs.email, kind="hard")
    admin = person(tenant, role=Role.ADMIN)
    html = signed_in(admin, tenant).get(BOUNCED).content.decode()
    assert str(theirs.pk) not in html and "No bounced addresses to review." in html
