"""The minute sweep dispatches scoring events whose on-commit dispatch was lost, once, tenant by tenant."""
from __future__ import annotations

import pytest
from django.dispatch import receiver
from django.utils import timezone

from scoring.events import lead_band_changed
from scoring.models import ScoreEvent, ScoreEventKind
from scoring.selectors import tenants_with_pending_score_events
from scoring.tasks import score_events_sweep_task
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _event(tenant, *, dispatched: bool) -> ScoreEvent:
    lead = LeadFactory(tenant=tenant)
    return ScoreEvent.objects.unscoped().create(
        tenant=tenant, lead=lead, kind=ScoreEventKind.BAND_CHANGED, from_band="warm", to_band="hot", score=85,
        dispatched_at=timezone.now() if dispatched else None)


def test_only_tenants_with_an_undispatched_event_are_swept(tenant, other_tenant):
    _event(tenant, dispatched=False)
    _event(other_tenant, dispatched=True)
    assert list(tenants_with_pending_score_events()) == [tenant]


def test_the_sweep_dispatches_each_lost_event_once(tenant, other_tenant):
    pending = [_event(tenant, dispatched=False), _event(other_tenant, dispatched=False)]
    seen = []

    @receiver(lead_band_changed, weak=False, dispatch_uid="test.sweep_seen")
    def _seen(sender, *, tenant, lead_id, **kwargs):
        seen.append((tenant.pk, lead_id))

    try:
        assert score_events_sweep_task() == 2
        assert score_events_sweep_task() == 0  # a second run finds nothing left
    finally:
        lead_band_changed.disconnect(dispatch_uid="test.sweep_seen")
    assert sorted(seen) == sorted((e.tenant_id, e.lead_id) for e in pending)
    assert not ScoreEvent.objects.unscoped().filter(dispatched_at__isnull=True).exists()
    assert list(tenants_with_pending_score_events()) == []
