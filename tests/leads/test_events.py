"""The lead core's events, the only way it reaches the floors above it: sent inside the transaction that
made the change, with what changed. Scoring, routing and the workspace answer them (ARCHITECTURE.md)."""
from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leads.events import lead_captured, lead_updated, signals_processed
from leads.models import Signal
from leads.services.capture import lead_capture
from leads.services.lead_edit import lead_update
from leads.services.signals import signals_process
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def recorded(event):
    seen = []

    def record(sender, **kwargs):
        seen.append(kwargs)

    event.connect(record, dispatch_uid="test.recorded")
    try:
        yield seen
    finally:
        event.disconnect(dispatch_uid="test.recorded")


def test_a_capture_sends_lead_captured_created_then_merged_with_the_changed_fields(tenant, lead_form):
    actor = Actor.for_form(lead_form)
    with recorded(lead_captured) as seen:
        first = lead_capture(tenant=tenant, data={"email": "ada@acme.example"}, actor=actor, form=lead_form)
        lead_capture(tenant=tenant, data={"email": "ada@acme.example", "job_title": "CTO"}, actor=actor, form=lead_form)
    assert [(e["tenant"], e["lead"].pk, e["created"]) for e in seen] == [(tenant, first.lead.pk, True),
                                                                        (tenant, first.lead.pk, False)]
    assert "job_title" in seen[1]["changed_fields"]


def test_an_edit_sends_lead_updated_with_the_edited_fields(tenant):
    lead = LeadFactory(tenant=tenant, job_title="Intern")
    with recorded(lead_updated) as seen:
        lead_update(lead=lead, data={"job_title": "VP Sales"}, actor=SYSTEM)
    assert len(seen) == 1 and seen[0]["tenant"] == tenant and seen[0]["lead"].pk == lead.pk
    assert seen[0]["changed_fields"] == frozenset({"job_title"})


def test_processing_signals_sends_signals_processed_once_with_their_leads(tenant):
    leads = [LeadFactory(tenant=tenant), LeadFactory(tenant=tenant)]
    signals = [Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="pricing_page_view",
                                                occurred_at=timezone.now() - timedelta(minutes=1)) for lead in leads]
    with recorded(signals_processed) as seen:
        signals_process(tenant=tenant, signal_ids=[s.pk for s in signals])
        signals_process(tenant=tenant, signal_ids=[s.pk for s in signals])  # a re-run: nothing left to process
    assert len(seen) == 1 and sorted(seen[0]["lead_ids"]) == sorted(lead.pk for lead in leads)
