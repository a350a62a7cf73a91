"""Scoring events (band crossed, became hot) from the ScoreEvent outbox to in-process subscribers.

Routing, escalation and nurture connect receivers to `lead_band_changed` / `lead_became_hot`;
each event row is dispatched once (status-guarded), after the scoring transaction committed.
"""
from __future__ import annotations

import django.dispatch
from django.db import transaction
from django.utils import timezone

from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import WebhookItem, webhook_emit_bulk, webhook_subscribed
from leads.webhooks import leads_webhook_data

from .models import ScoreEvent, ScoreEventKind

lead_band_changed = django.dispatch.Signal()  # kwargs: tenant, lead_id, from_band, to_band, score
lead_became_hot = django.dispatch.Signal()  # kwargs: tenant, lead_id, band, score

BATCH = 1000


def _webhooks_band_changed(*, tenant, events: list[ScoreEvent]) -> None:
    """`lead.band_changed` for the batch's band changes, in the dispatch transaction (one read of the leads and
    one insert, only when an endpoint subscribes). The score event's id is the key: dispatched once, sent once."""
    changed = [e for e in events if e.kind == ScoreEventKind.BAND_CHANGED]
    if not changed or not webhook_subscribed(tenant=tenant, event_type=WebhookEventType.LEAD_BAND_CHANGED):
        return
    leads = leads_webhook_data(tenant=tenant, lead_ids={e.lead_id for e in changed})
    webhook_emit_bulk(tenant=tenant, event_type=WebhookEventType.LEAD_BAND_CHANGED, items=[
        WebhookItem(lead_id=e.lead_id, key=f"score-event-{e.pk}", data={
            "lead": leads.get(e.lead_id, {"id": str(e.lead_id)}), "from_band": e.from_band, "to_band": e.to_band,
            "score": e.score, "changed_at": e.at.isoformat()})
        for e in changed])


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
            _webhooks_band_changed(tenant=tenant, events=batch)
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
