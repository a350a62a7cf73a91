"""Emitting events: outbox rows written in the caller's transaction, only for what a tenant subscribes to.

`webhook_emit` (one event) and `webhook_emit_bulk` (a batch, e.g. the leads of one capture batch) write
the events and one delivery per subscribed active endpoint in ONE statement, and enqueue the delivery task
after commit (once per transaction and tenant). A tenant with no endpoint for the type costs nothing: the
tenant's subscriptions are kept in-process for a few seconds (`SUBSCRIPTIONS_CACHE_SECONDS`), so most
calls run no SQL at all. Callers that build a payload first ask `webhook_subscribed` so they do not.

An event id is random, or, given a `key` (what makes the event unique to its cause, e.g. a breach's id),
derived from the tenant, type and key: emitting the same event twice (a re-run) writes it once.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from ..models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)

# How long a process trusts its copy of a tenant's subscriptions. An endpoint saved in this process is seen at
# once (the receivers below); one saved in another process (the admin, the API) within this many seconds.
SUBSCRIPTIONS_CACHE_SECONDS = 5.0
_subscriptions: dict[int, tuple[float, frozenset[str]]] = {}
_clock = time.monotonic
_EVENT_ID_NAMESPACE = uuid.UUID("5b0f7f9e-2a64-4c55-9f4c-6a1f1c1f0b15")


@dataclass(frozen=True)
class WebhookItem:
    """One event of a batch: its data, its lead (if any), and the key that makes it unique (if any)."""

    data: dict[str, Any]
    lead_id: uuid.UUID | str | None = None
    key: str | None = None


def _tenant_id(tenant) -> int:
    return getattr(tenant, "pk", tenant)


def webhook_subscriptions(*, tenant) -> frozenset[str]:
    """The event types at least one active endpoint of the tenant subscribes to (kept a few seconds)."""
    tenant_id = _tenant_id(tenant)
    kept = _subscriptions.get(tenant_id)
    if kept is not None and _clock() - kept[0] < SUBSCRIPTIONS_CACHE_SECONDS:
        return kept[1]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT unnest(events) FROM {WebhookEndpoint._meta.db_table} "  # noqa: S608
                       "WHERE tenant_id = %s AND is_active", [tenant_id])
        types = frozenset(row[0] for row in cursor.fetchall())
    _subscriptions[tenant_id] = (_clock(), types)
    return types


def webhook_subscribed(*, tenant, event_type: str) -> bool:
    """Whether emitting `event_type` for the tenant would write anything (usually no SQL: see the cache)."""
    return event_type in webhook_subscriptions(tenant=tenant)


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="webhooks.subscriptions_forget_saved")
@receiver(post_delete, sender=WebhookEndpoint, dispatch_uid="webhooks.subscriptions_forget_deleted")
def _subscriptions_forget(sender, instance, **kwargs) -> None:
    _subscriptions.pop(instance.tenant_id, None)


def subscriptions_forget(*, tenant=None) -> None:
    """Forget kept subscriptions (of one tenant, or all): after writes that bypass `save()`."""
    if tenant is None:
        _subscriptions.clear()
    else:
        _subscriptions.pop(_tenant_id(tenant), None)


def event_id_for(*, tenant, event_type: str, key: str | None) -> uuid.UUID:
    """The id of an event: derived from (tenant, type, key) when a key names its cause, else random."""
    if key is None:
        return uuid.uuid4()
    return uuid.uuid5(_EVENT_ID_NAMESPACE, f"{_tenant_id(tenant)}:{event_type}:{key}")


def _envelope(*, event_id: uuid.UUID, event_type: str, now: dt.datetime, data: dict) -> str:
    """The JSON body receivers get (stored as is, so every attempt sends the same content)."""
    return json.dumps({"id": str(event_id), "type": event_type, "created_at": now.isoformat(), "data": data},
                      cls=DjangoJSONEncoder, ensure_ascii=False)


_EMIT_SQL = f"""
WITH input AS (
    SELECT i.id, i.lead_id, i.payload, i.ord
    FROM unnest(%(ids)s::uuid[], %(lead_ids)s::uuid[], %(payloads)s::jsonb[]) WITH ORDINALITY AS i(id, lead_id, payload, ord)
), event AS (
    INSERT INTO {WebhookEvent._meta.db_table} (id, tenant_id, type, lead_id, payload, created_at)
    SELECT id, %(tenant_id)s, %(type)s, lead_id, payload, %(now)s FROM input ORDER BY ord
    ON CONFLICT (id) DO NOTHING
    RETURNING id, lead_id
)
INSERT INTO {WebhookDelivery._meta.db_table} (tenant_id, endpoint_id, event_id, lead_id, status, attempts,
    window_started_at, next_attempt_at, last_error, response_excerpt, created_at)
SELECT %(tenant_id)s, e.id, event.id, event.lead_id, %(pending)s, 0, %(now)s, %(now)s, '', '', %(now)s
FROM event JOIN input ON input.id = event.id
JOIN {WebhookEndpoint._meta.db_table} e ON e.tenant_id = %(tenant_id)s AND e.is_active AND %(type)s = ANY(e.events)
ORDER BY input.ord, e.id
ON CONFLICT DO NOTHING
"""  # noqa: S608 (table names only)


def webhook_emit_bulk(*, tenant, event_type: str, items: Sequence[WebhookItem],
                      now: dt.datetime | None = None) -> int:
    """Write a batch of events of one type and their deliveries in one statement, in the caller's
    transaction; deliver after commit. Returns the number of deliveries written (0: nobody subscribes)."""
    if event_type not in WebhookEventType.values:
        raise ValueError(f"unknown webhook event type {event_type!r}: add it to WebhookEventType")
    if not items or not webhook_subscribed(tenant=tenant, event_type=event_type):
        return 0
    now = now or timezone.now()
    tenant_id = _tenant_id(tenant)
    ids = [event_id_for(tenant=tenant_id, event_type=event_type, key=item.key) for item in items]
    with connection.cursor() as cursor:
        cursor.execute(_EMIT_SQL, {
            "ids": [str(i) for i in ids],
            "lead_ids": [str(item.lead_id) if item.lead_id else None for item in items],
            "payloads": [_envelope(event_id=i, event_type=event_type, now=now, data=item.data)
                         for i, item in zip(ids, items, strict=True)],
            "tenant_id": tenant_id, "type": event_type, "now": now, "pending": DeliveryStatus.PENDING,
        })
        written = cursor.rowcount
    if written:
        _send_after_commit(tenant_id)
    return written


def webhook_emit(*, tenant, event_type: str, data: dict[str, Any], lead_id=None, key: str | None = None,
                 now: dt.datetime | None = None) -> int:
    """Write one event and its deliveries in the caller's transaction (see `webhook_emit_bulk`)."""
    return webhook_emit_bulk(tenant=tenant, event_type=event_type,
                             items=[WebhookItem(data=data, lead_id=lead_id, key=key)], now=now)


def _send_after_commit(tenant_id: int) -> None:
    """After commit, the delivery task of the tenant, once per transaction."""
    if connection.in_atomic_block:
        for _savepoints, callback, _robust in connection.run_on_commit:
            if getattr(callback, "webhook_tenant_id", None) == tenant_id:
                return

    def enqueue() -> None:
        from ..tasks import webhook_deliveries_send_task

        enqueue.webhook_tenant_id = None  # ran: a later transaction on this connection enqueues its own
        webhook_deliveries_send_task.delay(tenant_id=tenant_id)

    enqueue.webhook_tenant_id = tenant_id
    # robust: the caller's work is committed; a broker that is down must not turn it into an error (beat's
    # sweep finds the deliveries due and hands them to a worker once Redis is back).
    transaction.on_commit(enqueue, robust=True)
