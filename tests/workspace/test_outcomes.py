"""The outcome service: one outcome per lead (a changed one updates it), the lifecycle moves it causes (won converts
at the customer stage, disqualified closes, the SLA clock stops), and the webhooks it sends."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.webhooks.models import WebhookEvent
from leadmgmt.webhooks.services.emit import subscriptions_forget
from leadmgmt.webhooks.services.endpoints import webhook_endpoint_create
from leads.models import LeadStage, LeadStatus, Outcome
from routing.models import SlaClock
from tests.support.routing import fresh
from tests.support.workspace import owned_lead, person
from workspace.services.outcomes import OutcomeInput, outcomes_sync

pytestmark = pytest.mark.django_db


def test_won_converts_disqualified_closes_and_the_clocks_stop(tenant, org):
    won, dq = owned_lead(tenant, org["rep"]), owned_lead(tenant, org["rep"])
    assert SlaClock.objects.unscoped().filter(lead__in=[won, dq], stopped_at__isnull=True).count() == 2
    with tenant_scope(tenant):
        outcomes_sync(tenant=tenant, actor=SYSTEM, items=[
            OutcomeInput(index=0, result="won", lead_id=won.pk, amount=Decimal("5"), currency="EUR"),
            OutcomeInput(index=1, result="disqualified", lead_id=dq.pk, reason="Duplicate account")])
    assert (fresh(won).status, fresh(won).stage, fresh(won).sla_due_at) == (LeadStatus.CONVERTED, LeadStage.CUSTOMER,
                                                                            None)
    assert (fresh(dq).status, fresh(dq).rejection_note) == (LeadStatus.UNQUALIFIED, "Duplicate account")
    stopped = dict(SlaClock.objects.unscoped().filter(lead__in=[won, dq]).values_list("lead_id", "stop_reason"))
    assert stopped == {won.pk: "converted", dq.pk: "closed"}


def test_one_outcome_per_lead_is_a_database_rule(tenant):
    lead = owned_lead(tenant, person(tenant))
    with tenant_scope(tenant):
        outcomes_sync(tenant=tenant, actor=SYSTEM, items=[OutcomeInput(index=0, result="lost", lead_id=lead.pk)])
        current = Outcome.objects.get(lead=lead)
        with pytest.raises(IntegrityError), transaction.atomic():
            Outcome.objects.create(tenant=tenant, lead=lead, result="won", closed_at=current.closed_at, source="sync")


def test_a_recorded_outcome_sends_the_lifecycle_webhooks(tenant, org):
    won, lost = owned_lead(tenant, org["rep"]), owned_lead(tenant, org["rep"])
    with tenant_scope(tenant):
        webhook_endpoint_create(tenant=tenant, actor=SYSTEM, url="https://hooks.acme.test/in",
                                events=["lead.converted", "lead.rejected"])
        subscriptions_forget(tenant=tenant)
        items = [OutcomeInput(index=0, result="won", lead_id=won.pk, amount=Decimal("9.99"), currency="USD"),
                 OutcomeInput(index=1, result="lost", lead_id=lost.pk, reason="competitor")]
        outcomes_sync(tenant=tenant, actor=SYSTEM, items=items)
        outcomes_sync(tenant=tenant, actor=SYSTEM, items=items)  # duplicates: nothing sent again
    events = {e.type: e.payload for e in WebhookEvent.objects.unscoped().filter(tenant=tenant)}
    assert set(events) == {"lead.converted", "lead.rejected"} and WebhookEvent.objects.unscoped().count() == 2
    outcome = events["lead.converted"]["data"]["outcome"]
    assert (outcome["amount"], outcome["currency"], outcome["result"]) == ("9.99", "USD", "won")
    rejected = events["lead.rejected"]["data"]
    assert (rejected["note"], rejected["outcome"]["result"], rejected["lead"]["id"]) == ("competitor", "lost",
                                                                                      str(lost.pk))
