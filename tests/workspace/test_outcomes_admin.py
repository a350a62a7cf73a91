"""Outcomes in the admin: tenant admins close an opportunity won or lost (the service's checks beside the fields,
the lead's outcome recorded); config editors keep the lost-deal taxonomy; outcomes are a read-only list; nothing of
another tenant is reachable; a new tenant gets the default lost reasons."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import tenant_create
from leads.lost_reasons import DEFAULT_LOST_REASONS, lost_reasons_seed
from leads.models import (
    Lead,
    LeadStage,
    LeadStatus,
    LostReason,
    Opportunity,
    OpportunityStage,
    Outcome,
)
from tests.support.workspace import owned_lead, person
from workspace.services.lifecycle import lead_convert

pytestmark = pytest.mark.django_db


def staff(tenant, role) -> Client:
    user = person(tenant, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def deal(tenant) -> Opportunity:
    lost_reasons_seed(tenant_id=tenant.pk)
    lead = owned_lead(tenant, person(tenant), company="Initech")
    return lead_convert(lead=lead, actor=SYSTEM, name="Initech pilot")


def change_url(opportunity) -> str:
    return reverse("admin:leads_opportunity_change", args=[opportunity.pk])


def form(opportunity, **values) -> dict:
    data = {"stage": opportunity.stage, "amount": "", "currency": "", "closed_at_0": "", "closed_at_1": "",
            "lost_reason": ""}
    return data | values


def test_a_new_tenant_gets_the_default_lost_reasons():
    tenant = tenant_create(slug="initech", name="Initech", admin_email="admin@initech.test").tenant
    codes = list(LostReason.objects.unscoped().filter(tenant=tenant).order_by("position").values_list("code", flat=True))
    assert codes == [code for code, _label in DEFAULT_LOST_REASONS]
    assert lost_reasons_seed(tenant_id=tenant.pk) == []  # idempotent


def test_an_admin_closes_an_opportunity_won_with_the_services_checks(tenant, other_tenant):
    opportunity = deal(tenant)
    client = staff(tenant, Role.ADMIN)
    assert client.get(change_url(opportunity)).status_code == 200
    missing = client.post(change_url(opportunity), form(opportunity, stage="won"))
    assert missing.status_code == 200 and "Give the amount the deal was won for." in missing.content.decode()
    bad_currency = client.post(change_url(opportunity), form(opportunity, stage="won", amount="10", currency="ZZZ"))
    assert bad_currency.status_code == 200 and "ISO 4217" in bad_currency.content.decode()
    assert not Outcome.objects.unscoped().exists()
    done = client.post(change_url(opportunity), form(opportunity, stage="won", amount="750.00", currency="usd"))
    assert done.status_code == 302, done.content.decode()[:2000]
    closed = Opportunity.objects.unscoped().get(pk=opportunity.pk)
    assert (closed.stage, str(closed.amount), closed.currency) == (OpportunityStage.WON, "750.00", "USD")
    assert closed.closed_at is not None
    lead = Lead.objects.unscoped().get(pk=opportunity.lead_id)
    assert (lead.status, lead.stage) == (LeadStatus.CONVERTED, LeadStage.CUSTOMER)
    assert Outcome.objects.unscoped().get(lead=lead).source == "admin"
    assert AuditEvent.objects.unscoped().filter(action="opportunity.closed", metadata__via="admin").exists()

    theirs = deal(other_tenant)
    assert client.get(change_url(theirs)).status_code == 302  # another tenant's: "does not exist"
    assert client.post(change_url(theirs), form(theirs, stage="won", amount="1", currency="USD")).status_code == 302
    assert Opportunity.objects.unscoped().get(pk=theirs.pk).stage == OpportunityStage.DISCOVERY
    listing = client.get(reverse("admin:leads_opportunity_changelist")).content.decode()
    assert change_url(opportunity) in listing and change_url(theirs) not in listing
    outcomes = client.get(reverse("admin:leads_outcome_changelist"))
    assert outcomes.status_code == 200 and "750.00" in outcomes.content.decode()
    assert client.get(reverse("admin:leads_outcome_add")).status_code == 403


def test_close_lost_needs_a_reason_in_the_admin(tenant):
    opportunity = deal(tenant)
    client = staff(tenant, Role.ADMIN)
    missing = client.post(change_url(opportunity), form(opportunity, stage="lost"))
    assert missing.status_code == 200 and "Choose why the deal was lost." in missing.content.decode()
    price = LostReason.objects.unscoped().get(tenant=tenant, code="price")
    assert 'value="price"' in client.get(change_url(opportunity)).content.decode()
    done = client.post(change_url(opportunity), form(opportunity, stage="lost", lost_reason="price"))
    assert done.status_code == 302
    assert Outcome.objects.unscoped().get(lead_id=opportunity.lead_id).lost_reason_id == price.pk


def test_marketing_ops_read_opportunities_and_keep_the_lost_taxonomy(tenant, other_tenant):
    opportunity = deal(tenant)
    lost_reasons_seed(tenant_id=other_tenant.pk)
    LostReason.objects.unscoped().filter(tenant=other_tenant, code="price").update(label="Globex price")
    client = staff(tenant, Role.MARKETING_OPS)
    assert client.get(change_url(opportunity)).status_code == 200
    refused = client.post(change_url(opportunity), form(opportunity, stage="won", amount="1", currency="USD"))
    assert refused.status_code == 403 and not Outcome.objects.unscoped().exists()
    listing = client.get(reverse("admin:leads_lostreason_changelist")).content.decode()
    assert "Price / budget" in listing and "Globex price" not in listing
    added = client.post(reverse("admin:leads_lostreason_add"), {"code": "legal", "label": "Legal review failed",
                                                                 "position": 80, "is_active": "on"})
    assert added.status_code == 302 and LostReason.objects.unscoped().filter(tenant=tenant, code="legal").exists()
    duplicate = client.post(reverse("admin:leads_lostreason_add"), {"code": "price", "label": "Again",
                                                                     "position": 1, "is_active": "on"})
    assert duplicate.status_code == 200 and "already exists" in duplicate.content.decode()


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_reps_and_managers_do_not_reach_these_admin_pages(tenant, role):
    opportunity = deal(tenant)
    client = staff(tenant, role)
    assert client.get(reverse("admin:leads_lostreason_changelist")).status_code == 403
    assert client.get(change_url(opportunity)).status_code == 403
    assert client.get(reverse("admin:leads_outcome_changelist")).status_code == 403
