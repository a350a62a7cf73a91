"""Outcomes in over the API: `GET/PATCH /api/v1/opportunities/…` (close won or lost, filters, roles, tenants) and
`POST /api/v1/outcomes/` (the outcome sync of another CRM: scope, per-item results, idempotency, 1000 items in a
handful of queries)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import ApiScope
from leads.lost_reasons import lost_reasons_seed
from leads.models import (
    Lead,
    LeadStage,
    LeadStatus,
    Opportunity,
    OpportunityStage,
    Outcome,
    StageTransition,
)
from tests.support.factories import api_key_for
from tests.support.lead_api import errors, owned
from tests.support.routing import fresh, lead, rep
from workspace.services.lifecycle import lead_convert

pytestmark = pytest.mark.django_db

OPPS = "/api/v1/opportunities/"
OUTCOMES = "/api/v1/outcomes/"


def key_client(tenant, scopes) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def deal(tenant, owner, **fields) -> Opportunity:
    """An owned lead converted into an opportunity (its owner's)."""
    lost_reasons_seed(tenant_id=tenant.pk)
    converted = owned(tenant, owner, **fields)
    return lead_convert(lead=converted, actor=SYSTEM, name=f"Deal {converted.email}")


def outcome_of(lead_) -> Outcome:
    return Outcome.objects.unscoped().get(lead_id=lead_.pk)


# --- opportunities ----------------------------------------------------------------------------------------------


def test_the_owner_closes_won_and_the_lead_becomes_a_customer(tenant, api_org):
    people, clients = api_org
    opportunity = deal(tenant, people["sdr"])
    response = clients["sdr"].patch(f"{OPPS}{opportunity.pk}/", {"stage": "won", "amount": "12000.50",
                                                                 "currency": "eur"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["stage"], body["amount"], body["currency"]) == ("won", "12000.50", "EUR")
    assert body["closed_at"] is not None and body["lost_reason"] is None
    converted = fresh(opportunity.lead)
    assert (converted.status, converted.stage) == (LeadStatus.CONVERTED, LeadStage.CUSTOMER)
    outcome = outcome_of(converted)
    assert (outcome.result, outcome.amount, outcome.currency, outcome.source, outcome.opportunity_id) == (
        "won", Decimal("12000.50"), "EUR", "opportunity", opportunity.pk)
    assert StageTransition.objects.unscoped().filter(lead=converted, to_stage="customer").count() == 1
    events = AuditEvent.objects.unscoped().filter(object_id=str(converted.pk), action="lead.outcome")
    assert events.count() == 1 and events.get().metadata["result"] == "won"
    again = clients["sdr"].patch(f"{OPPS}{opportunity.pk}/", {"stage": "won", "amount": "12000.50",
                                                              "currency": "EUR"}, format="json")
    assert again.status_code == 200
    assert events.count() == 1 and Outcome.objects.unscoped().count() == 1  # the same close twice: nothing new


def test_closing_needs_an_amount_for_won_and_a_reason_for_lost(tenant, api_org):
    people, clients = api_org
    opportunity = deal(tenant, people["sdr"])
    url = f"{OPPS}{opportunity.pk}/"
    won = clients["sdr"].patch(url, {"stage": "won"}, format="json")
    assert won.status_code == 400 and "amount" in errors(won)
    no_currency = clients["sdr"].patch(url, {"stage": "won", "amount": 10}, format="json")
    assert no_currency.status_code == 400 and "currency" in errors(no_currency)
    lost = clients["sdr"].patch(url, {"stage": "lost"}, format="json")
    assert lost.status_code == 400 and "lost_reason" in errors(lost)
    unknown = clients["sdr"].patch(url, {"stage": "lost", "lost_reason": "astrology"}, format="json")
    assert unknown.status_code == 400 and "price" in errors(unknown)["lost_reason"][0]
    bad = clients["sdr"].patch(url, {"stage": "won", "amount": "-1", "currency": "XXQ",
                                     "closed_at": "2999-01-01T00:00:00Z"}, format="json")
    assert bad.status_code == 400 and {"amount", "currency"} <= set(errors(bad))
    future = clients["sdr"].patch(url, {"stage": "won", "amount": 5, "currency": "USD",
                                        "closed_at": "2999-01-01T00:00:00Z"}, format="json")
    assert future.status_code == 400 and "closed_at" in errors(future)
    not_closed = clients["sdr"].patch(url, {"closed_at": "2024-01-01T00:00:00Z"}, format="json")
    assert not_closed.status_code == 400 and "closed_at" in errors(not_closed)
    assert fresh(opportunity).stage == OpportunityStage.DISCOVERY and not Outcome.objects.unscoped().exists()

    lost = clients["sdr"].patch(url, {"stage": "lost", "lost_reason": "competitor",
                                      "closed_at": "2025-03-01T12:00:00Z"}, format="json")
    assert lost.status_code == 200, lost.content
    assert (lost.json()["lost_reason"], lost.json()["lost_reason_label"]) == ("competitor", "Chose a competitor")
    assert fresh(opportunity.lead).status == LeadStatus.CONVERTED  # a converted lead with a lost deal
    assert outcome_of(opportunity.lead).lost_reason.code == "competitor"
    reopen = clients["sdr"].patch(url, {"stage": "demo"}, format="json")
    assert reopen.status_code == 400 and "stage" in errors(reopen)
    # A changed outcome updates the lead's one outcome; the audit trail keeps both.
    won = clients["sdr"].patch(url, {"stage": "won", "amount": 900, "currency": "USD"}, format="json")
    assert won.status_code == 200 and won.json()["lost_reason"] is None
    outcome = outcome_of(opportunity.lead)
    assert (outcome.result, outcome.lost_reason_id, Outcome.objects.unscoped().count()) == ("won", None, 1)
    history = AuditEvent.objects.unscoped().filter(object_id=str(opportunity.lead_id), action="lead.outcome")
    assert [e.metadata["result"] for e in history.order_by("at", "id")] == ["lost", "won"]
    assert history.order_by("at", "id").last().metadata["previous"]["result"] == "lost"


def test_who_may_close_and_read_opportunities(tenant, other_tenant, api_org):
    people, clients = api_org
    opportunity = deal(tenant, people["sdr"])
    url = f"{OPPS}{opportunity.pk}/"
    close = {"stage": "won", "amount": 1, "currency": "USD"}
    assert clients["sdr2"].patch(url, close, format="json").status_code == 404  # not a lead they see
    assert clients["ops"].get(url).status_code == 200  # marketing ops read
    assert clients["ops"].patch(url, close, format="json").status_code == 403
    assert key_client(tenant, [ApiScope.LEADS_READ]).patch(url, close, format="json").status_code == 403
    assert clients["manager"].get(url).status_code == 200
    theirs = deal(other_tenant, rep(other_tenant))
    assert clients["admin"].get(f"{OPPS}{theirs.pk}/").status_code == 404
    assert clients["admin"].patch(f"{OPPS}{theirs.pk}/", close, format="json").status_code == 404
    assert not Outcome.objects.unscoped().exists()
    writer = key_client(tenant, [ApiScope.LEADS_READ, ApiScope.LEADS_WRITE])
    assert writer.patch(url, close, format="json").status_code == 200


def test_the_list_filters_and_pages_without_n_plus_one(tenant, api_org, django_assert_max_num_queries):
    people, clients = api_org
    won = deal(tenant, people["sdr"])
    clients["sdr"].patch(f"{OPPS}{won.pk}/", {"stage": "won", "amount": 5, "currency": "USD",
                                              "closed_at": "2025-02-01T00:00:00Z"}, format="json")
    open_ones = [deal(tenant, people["sdr"]) for _ in range(4)]
    mine = deal(tenant, people["sdr2"])
    listed = clients["sdr"].get(OPPS)
    assert listed.status_code == 200
    assert {row["id"] for row in listed.json()["results"]} == {won.pk, *(o.pk for o in open_ones)}
    with django_assert_max_num_queries(8):
        everyone = clients["admin"].get(OPPS, {"page_size": 50})
    assert everyone.json()["count"] == 6
    assert [r["id"] for r in clients["admin"].get(OPPS, {"result": "won"}).json()["results"]] == [won.pk]
    assert clients["admin"].get(OPPS, {"result": "open"}).json()["count"] == 5
    assert clients["admin"].get(OPPS, {"stage": "won", "closed_from": "2025-01-01T00:00:00Z",
                                       "closed_to": "2025-03-01T00:00:00Z"}).json()["count"] == 1
    assert clients["admin"].get(OPPS, {"closed_from": "2025-03-01T00:00:00Z"}).json()["count"] == 0
    assert clients["admin"].get(OPPS, {"lead": str(mine.lead_id)}).json()["results"][0]["id"] == mine.pk
    assert clients["admin"].get(OPPS, {"owner": people["sdr2"].pk}).json()["count"] == 1
    for bad in ({"stage": "maybe"}, {"result": ""}, {"owner": "x"}, {"lead": "nope"}, {"closed_from": "soon"}):
        response = clients["admin"].get(OPPS, bad)
        assert response.status_code == 400 and set(bad) <= set(errors(response)), bad


# --- the outcome sync ------------------------------------------------------------------------------------------


@pytest.fixture
def sync(tenant):
    lost_reasons_seed(tenant_id=tenant.pk)
    return key_client(tenant, [ApiScope.OUTCOMES_WRITE])


def test_the_sync_needs_its_own_scope(tenant, other_tenant, api_org, sync):
    people, clients = api_org
    target = owned(tenant, people["sdr"])
    body = {"lead_id": str(target.pk), "outcome": "won"}
    assert key_client(tenant, [ApiScope.LEADS_WRITE, ApiScope.LEADS_READ]).post(
        OUTCOMES, body, format="json").status_code == 403
    assert clients["admin"].post(OUTCOMES, body, format="json").status_code in (401, 403)  # members do not sync
    assert APIClient().post(OUTCOMES, body, format="json").status_code in (401, 403)
    theirs = lead(other_tenant)
    response = sync.post(OUTCOMES, {"lead_id": str(theirs.pk), "outcome": "won"}, format="json")
    assert response.status_code == 202 and response.json()["results"][0]["status"] == "unknown_lead"
    assert fresh(theirs).status == LeadStatus.NEW and not Outcome.objects.unscoped().exists()


def test_the_sync_answers_each_item_in_order(tenant, api_org, sync):
    people, _clients = api_org
    by_id = owned(tenant, people["sdr"], email="ada@acme.example")
    by_external = lead(tenant, external_id="crm-4711")
    disqualified = owned(tenant, people["sdr"])
    items = [
        {"lead_id": str(by_id.pk), "outcome": "won", "amount": "1500", "currency": "usd"},
        {"external_id": "crm-4711", "outcome": "lost", "reason": "Chose a competitor"},
        {"email": "  ADA@acme.example ", "outcome": "won", "amount": "1500", "currency": "USD"},
        {"email": "nobody@acme.example", "outcome": "won"},
        {"lead_id": str(disqualified.pk), "outcome": "disqualified", "reason": "Student, no budget"},
        {"outcome": "won"},
        {"lead_id": str(by_id.pk), "email": "ada@acme.example", "outcome": "won"},
        {"lead_id": str(by_id.pk), "outcome": "maybe", "amount": 5},
        "not an object",
    ]
    response = sync.post(OUTCOMES, items, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "recorded", "recorded", "duplicate", "unknown_lead", "recorded", "error", "error", "error", "error"]
    assert [r["index"] for r in body["results"]] == list(range(9))
    assert (body["recorded"], body["duplicates"], body["unknown_leads"], body["errors"]) == (3, 1, 1, 4)
    assert body["results"][0]["lead_id"] == str(by_id.pk) and body["results"][2]["lead_id"] == str(by_id.pk)
    assert "lead_id" in body["results"][5]["errors"] and "email" in body["results"][6]["errors"]
    assert "outcome" in body["results"][7]["errors"]

    won, lost, dq = fresh(by_id), fresh(by_external), fresh(disqualified)
    assert (won.status, won.stage) == (LeadStatus.CONVERTED, LeadStage.CUSTOMER)
    assert (lost.status, lost.rejection_reason) == (LeadStatus.UNQUALIFIED, "competitor")  # no deal here: closed
    assert (dq.status, dq.rejection_note) == (LeadStatus.UNQUALIFIED, "Student, no budget")
    assert outcome_of(by_external).lost_reason.code == "competitor"
    assert outcome_of(disqualified).lost_reason is None and outcome_of(disqualified).reason == "Student, no budget"
    assert outcome_of(by_id).source == "sync"
    assert AuditEvent.objects.unscoped().filter(action="lead.outcome").count() == 3


def test_the_same_outcome_twice_changes_nothing(tenant, sync):
    target = lead(tenant, email="bo@acme.example")
    closed = "2025-04-01T09:00:00Z"
    body = {"email": "bo@acme.example", "outcome": "lost", "reason": "price", "closed_at": closed}
    first = sync.post(OUTCOMES, body, format="json").json()["results"][0]
    assert first["status"] == "recorded"
    before = fresh(target).updated_at
    for repeat in (body, {"email": "bo@acme.example", "outcome": "lost"}):  # omitted values keep the current ones
        again = sync.post(OUTCOMES, repeat, format="json").json()["results"][0]
        assert (again["status"], again["outcome_id"]) == ("duplicate", first["outcome_id"])
    assert fresh(target).updated_at == before
    assert AuditEvent.objects.unscoped().filter(action="lead.outcome").count() == 1
    changed = sync.post(OUTCOMES, {**body, "outcome": "won", "amount": 10, "currency": "EUR"}, format="json")
    assert changed.json()["results"][0]["status"] == "recorded"
    assert outcome_of(target).result == "won" and Outcome.objects.unscoped().count() == 1


def test_a_synced_outcome_closes_the_leads_open_opportunity(tenant, api_org, sync):
    people, _clients = api_org
    opportunity = deal(tenant, people["sdr"])
    response = sync.post(OUTCOMES, {"lead_id": str(opportunity.lead_id), "outcome": "lost", "reason": "timing"},
                         format="json")
    assert response.json()["results"][0]["status"] == "recorded"
    closed = fresh(opportunity)
    assert (closed.stage, closed.lost_reason.code) == (OpportunityStage.LOST, "timing") and closed.closed_at
    converted = fresh(opportunity.lead)
    assert (converted.status, converted.stage) == (LeadStatus.CONVERTED, LeadStage.OPPORTUNITY)
    assert outcome_of(converted).opportunity_id == opportunity.pk


def test_a_list_of_1000_takes_a_handful_of_queries(tenant, sync, django_assert_max_num_queries):
    now = timezone.now()
    Lead.objects.unscoped().bulk_create([Lead(tenant=tenant, email=f"bulk{n}@acme.example", created_at=now)
                                         for n in range(1000)])
    items = [{"email": f"bulk{n}@acme.example", "outcome": ("won", "lost", "disqualified")[n % 3],
              "amount": "10.00", "currency": "USD", "closed_at": (now - dt.timedelta(days=1)).isoformat()}
             for n in range(1000)]
    with django_assert_max_num_queries(25):
        response = sync.post(OUTCOMES, items, format="json")
    assert response.status_code == 202 and response.json()["recorded"] == 1000
    assert Outcome.objects.unscoped().count() == 1000
    with django_assert_max_num_queries(25):
        again = sync.post(OUTCOMES, items, format="json")
    assert again.json()["duplicates"] == 1000
    too_many = sync.post(OUTCOMES, items + items[:1], format="json")
    assert too_many.status_code == 400 and "1000" in errors(too_many)["detail"][0]
    assert sync.post(OUTCOMES, [], format="json").status_code == 400
    assert sync.post(OUTCOMES, "won", format="json").status_code == 400
