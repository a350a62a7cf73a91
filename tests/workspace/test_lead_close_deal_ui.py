"""The lead page's opportunity card: "Close won" (amount, currency, close date) and "Close lost" (a reason of the
tenant's lost taxonomy), through the outcome service; errors beside the fields with nothing written; who may; the
timeline tells it; another rep's and another tenant's deals stay out of reach."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.lost_reasons import lost_reasons_seed
from leads.models import Lead, LeadStage, LeadStatus, Opportunity, OpportunityStage, Outcome
from tests.support.workspace import owned_lead, person
from workspace.services.lifecycle import lead_convert

pytestmark = pytest.mark.django_db


def url(lead, action=""):
    return f"/leads/{lead.pk}/" + (f"{action}/" if action else "")


def converted(tenant, owner, **fields) -> Lead:
    lost_reasons_seed(tenant_id=tenant.pk)
    lead = owned_lead(tenant, owner, company="Initech", **fields)
    lead_convert(lead=lead, actor=SYSTEM, name="Initech pilot")
    return Lead.objects.unscoped().get(pk=lead.pk)


def test_the_owner_closes_the_deal_won_on_the_lead_page(tenant, org, signed_in, django_assert_max_num_queries):
    rep = org["rep"]
    lead = converted(tenant, rep)
    client = signed_in(rep, tenant)
    with django_assert_max_num_queries(60):
        page = client.get(url(lead)).content.decode()
    assert 'data-action="won"' in page and 'data-action="lost"' in page
    assert 'name="won-amount"' in page and 'name="lost-lost_reason"' in page and "Chose a competitor" in page
    assert "onclick" not in page  # CSP: no inline handlers

    refused = client.post(url(lead, "won"), {"won-amount": "", "won-currency": "eur"})
    assert refused.status_code == 400 and "This field is required" in refused.content.decode()
    bad_currency = client.post(url(lead, "won"), {"won-amount": "100", "won-currency": "ZZZ"})
    assert bad_currency.status_code == 400 and "ISO 4217" in bad_currency.content.decode()
    future = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    in_future = client.post(url(lead, "won"), {"won-amount": "100", "won-currency": "EUR", "won-closed_on": future})
    assert in_future.status_code == 400 and "cannot be in the future" in in_future.content.decode()
    assert not Outcome.objects.unscoped().exists()

    done = client.post(url(lead, "won"), {"won-amount": "2500.00", "won-currency": "eur", "won-closed_on": ""},
                       follow=True)
    assert done.status_code == 200
    body = done.content.decode()
    assert "closed won." in body and "Customer: closed won by" in body and "2,500.00 EUR" in body  # flash, timeline
    lead = Lead.objects.unscoped().get(pk=lead.pk)
    assert (lead.status, lead.stage) == (LeadStatus.CONVERTED, LeadStage.CUSTOMER)
    outcome = Outcome.objects.unscoped().get(lead=lead)
    assert (outcome.result, str(outcome.amount), outcome.currency, outcome.source) == ("won", "2500.00", "EUR", "ui")
    assert 'data-action="won"' not in body  # closed: no close forms any more


def test_close_lost_needs_a_reason_and_records_it(tenant, org, signed_in):
    rep = org["rep"]
    lead = converted(tenant, rep)
    client = signed_in(rep, tenant)
    refused = client.post(url(lead, "lost"), {"lost-lost_reason": ""})
    assert refused.status_code == 400 and 'data-action="lost" open' in refused.content.decode()
    day = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    done = client.post(url(lead, "lost"), {"lost-lost_reason": "price", "lost-closed_on": day})
    assert done.status_code == 302
    deal = Opportunity.objects.unscoped().get(lead=lead)
    assert (deal.stage, deal.lost_reason.code, timezone.localtime(deal.closed_at).date().isoformat()) == (
        OpportunityStage.LOST, "price", day)
    page = client.get(url(lead)).content.decode()
    assert "Closed lost by" in page and "Price / budget" in page


def test_who_sees_the_close_forms_and_may_post(tenant, other_tenant, org, signed_in):
    lead = converted(tenant, org["rep"])
    other_rep = signed_in(org["rep2"], tenant)
    assert other_rep.get(url(lead)).status_code == 404
    assert other_rep.post(url(lead, "won"), {"won-amount": "1", "won-currency": "USD"}).status_code == 404
    ops = person(tenant, role=Role.MARKETING_OPS)
    ops_client = signed_in(ops, tenant)
    assert 'data-action="won"' not in ops_client.get(url(lead)).content.decode()
    assert ops_client.post(url(lead, "won"), {"won-amount": "1", "won-currency": "USD"}).status_code == 404
    manager = signed_in(org["manager"], tenant)
    assert 'data-action="won"' in manager.get(url(lead)).content.decode()
    stranger = person(other_tenant, role=Role.ADMIN)
    assert signed_in(stranger, other_tenant).post(url(lead, "won"), {"won-amount": "1", "won-currency": "USD"}
                                                  ).status_code == 404
    assert not Outcome.objects.unscoped().exists()
    assert manager.post(url(lead, "won"), {"won-amount": "1", "won-currency": "USD"}).status_code == 302
