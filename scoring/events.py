"""Scoring events (band crossed, became hot) from the ScoreEvent outbox to in-process subscribers.

Routing, escalation and nurture connect receivers to `lead_band_changed` / `lead_became_hot`;
each event row is dispatched once (status-guarded), after the scoring transaction committed.
"""
from __future__ import annotations

import django.dispatch
from django.db import transaction
from django.utils import timezone

from .models import ScoreEvent, ScoreEventKind

lead_band_changed = django.dispatch.Signal()  # kwargs: tenant, lead_id, from_band, to_band, score
lead_became_hot = django.dispatch.Signal()  # kwargs: tenant, lead_id, band, score

BATCH = 1000


def score_events_dispatch(*, tenant, limit: int = 50_000) -> int:
    """Send pending events of the tenant to subscribers, oldest first, in batches; returns the count."""
    sent = 0
    while sent < limit:
        with transaction.atomic():
            batch = list(
                ScoreEvent.objects.for_tenant(tenant).select_for_update(skip_locked=True)
                .filter(dispatched_at__isnull=True).order_by("at", "id")[:BATCH]
            )
            if not batch:
                break
            for event in batch:
                if event.kind == ScoreEventKind.BAND_CHANGED:
                    lead_band_changed.send(sender=ScoreEvent, tenant=tenant, lead_id=event.lead_id,
                                           from_band=event.from_band, to_band=event.to_band, score=event.score)
                else:
                    lead_became_hot.send(sender=ScoreEvent, tenant=tenant, lead_id=event.lead_id,
                                         band=event.to_band, score=event.score)
            ScoreEvent.objects.for_tenant(tenant).filter(pk__in=[e.pk for e in batch]).update(dispatched_at=timezone.now())
            sent += len(batch)
    return sent
