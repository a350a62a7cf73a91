"""Delivering events: claim due deliveries, POST them signed, record the answer, retry with backoff, give up.

A worker claims up to `WEBHOOK_CLAIM_BATCH` due deliveries of a tenant with `FOR UPDATE SKIP LOCKED` and
leases them (`claimed_until`) in a short transaction, then sends each outside any transaction and records
the answer with a status-guarded update. A worker killed mid-send leaves a lease that expires; the
delivery is sent again (receivers deduplicate by `Webhook-Id`: delivery is at least once).

Order per lead: a delivery is not claimed while an earlier (lower id) delivery of the same endpoint and
lead is pending, so one lead's events reach an endpoint in the order they happened, and a failing event
holds the later ones of its lead back until it is delivered or given up.

Retries: a non-2xx answer, a timeout or a refused connection schedules the next attempt after
`WEBHOOK_RETRY_BASE_SECONDS` × 2^(attempts-1) (at most `WEBHOOK_RETRY_MAX_SECONDS`), ±20 % jitter, until
`WEBHOOK_RETRY_HOURS` after the delivery's window started (creation or "send again"); then it gives up.

History: each attempt recorded is also one WebhookDeliveryAttempt row, inserted in the transaction of the
status-guarded update and only when that update took (a worker whose lease was taken over, or a re-run, records
nothing twice), numbered after the delivery's last one by the same statement.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import (
    AttemptTrigger,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from ..signing import signature_header

log = logging.getLogger(__name__)

EXCERPT_CHARS = 500
USER_AGENT = "leadmgmt-webhooks/1"

_D = WebhookDelivery._meta.db_table
_E = WebhookEndpoint._meta.db_table
_CLAIM_SQL = f"""
SELECT d.id FROM {_D} d JOIN {_E} e ON e.id = d.endpoint_id AND e.tenant_id = d.tenant_id AND e.is_active
WHERE d.tenant_id = %(tenant_id)s AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
  AND (d.claimed_until IS NULL OR d.claimed_until < %(now)s)
  AND NOT EXISTS (SELECT 1 FROM {_D} p WHERE p.tenant_id = d.tenant_id AND p.endpoint_id = d.endpoint_id
                  AND p.lead_id = d.lead_id AND p.status = 'pending' AND p.id < d.id)
ORDER BY d.next_attempt_at, d.id LIMIT %(limit)s
FOR UPDATE OF d SKIP LOCKED
"""  # noqa: S608 (table names only)

_A = WebhookDeliveryAttempt._meta.db_table
# The next number of the delivery's history, and what caused the attempt: a retry when the window had attempts
# already; else the first attempt, or "send again" when an earlier window left attempts behind. The delivery's
# row is locked by the guarded update before, so two recorders of one delivery never pick the same number.
_ATTEMPT_SQL = f"""
INSERT INTO {_A} (tenant_id, delivery_id, number, trigger, attempted_at, status_code, error, response_time_ms,
                  response_excerpt)
SELECT %(tenant_id)s::bigint, %(delivery_id)s::bigint, COALESCE(MAX(a.number), 0) + 1,
       CASE WHEN %(retry)s THEN %(retry_trigger)s WHEN MAX(a.number) IS NULL THEN %(first)s ELSE %(send_again)s END,
       %(at)s::timestamptz, %(status_code)s::smallint, %(error)s::text, %(response_time_ms)s::integer,
       %(excerpt)s::text
FROM {_A} a WHERE a.tenant_id = %(tenant_id)s AND a.delivery_id = %(delivery_id)s
"""  # noqa: S608 (table names only)


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status_code: int | None
    response_time_ms: int
    excerpt: str
    error: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any non-2xx: not followed (a POST must not turn into a GET elsewhere)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _address_refused(url: str) -> str:
    """Why `url` must not be called: its host resolves to a loopback, private, link-local or otherwise
    non-public address (the app's own network, a cloud metadata service), unless
    `WEBHOOK_ALLOW_PRIVATE_URLS`; "" when it may."""
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return ""
    parts = urllib.parse.urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as exc:
        return f"Host not found: {exc}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            return f"Refused: {parts.hostname} resolves to a non-public address ({address})."
    return ""


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.monotonic()
    status, excerpt, error = None, "", ""
    refused = _address_refused(url)
    if refused:
        return AttemptResult(ok=False, status_code=None, response_time_ms=0, excerpt="", error=refused[:300])
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
            excerpt = response.read(EXCERPT_CHARS * 4).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            excerpt = exc.read(EXCERPT_CHARS * 4).decode("utf-8", "replace")
        except OSError:
            excerpt = ""
    except (OSError, ValueError) as exc:  # refused, reset, timed out, DNS, TLS, a URL urllib cannot open
        error = f"{type(exc).__name__}: {exc}"
    elapsed = int((time.monotonic() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    return AttemptResult(ok=ok, status_code=status, response_time_ms=elapsed,
                         excerpt=excerpt.replace("\x00", "")[:EXCERPT_CHARS], error=error[:300])


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait before the next attempt after `attempts` failed ones: exponential, capped, ±20 % jitter."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** min(max(attempts - 1, 0), 30)
    seconds = min(base, settings.WEBHOOK_RETRY_MAX_SECONDS)
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not a secret)


# One run of the send task starts no new batch after this many seconds (below Celery's soft time limit), and a
# batch is small enough to be sent within it even when every endpoint answers at the last moment.
RUN_SECONDS = 120


def _claim_limit() -> int:
    return max(1, min(settings.WEBHOOK_CLAIM_BATCH, RUN_SECONDS // settings.WEBHOOK_TIMEOUT_SECONDS))


def deliveries_claim(*, tenant, now: dt.datetime, limit: int | None = None) -> list[int]:
    """Lease up to `limit` due deliveries of the tenant (the first pending one per endpoint and lead), for as
    long as sending all of them one after the other may take (so no other worker takes one meanwhile)."""
    limit = limit or _claim_limit()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, {"tenant_id": tenant.pk, "now": now, "limit": limit})
            ids = [row[0] for row in cursor.fetchall()]
        if ids:
            lease = now + dt.timedelta(seconds=(settings.WEBHOOK_TIMEOUT_SECONDS + 5) * len(ids) + 60)
            WebhookDelivery.objects.for_tenant(tenant).filter(pk__in=ids).update(claimed_until=lease)
    return ids


def delivery_send(*, delivery: WebhookDelivery, now: dt.datetime | None = None) -> WebhookDelivery:
    """One attempt: POST the event signed, record the answer, schedule a retry or give up (no transaction
    is open during the request). `delivery` comes with its endpoint and event."""
    endpoint, event = delivery.endpoint, delivery.event
    body = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "Webhook-Id": str(event.id), "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature_header(secrets=endpoint.secrets_signing(), timestamp=timestamp, body=body),
    }
    result = _post(url=endpoint.url, body=body, headers=headers)
    return delivery_record(delivery=delivery, result=result, now=now)


def delivery_record(*, delivery: WebhookDelivery, result: AttemptResult, now: dt.datetime | None = None
                    ) -> WebhookDelivery:
    """Write what an attempt got back (one transaction): the delivery's outcome and its row of the attempt
    history, and the endpoint's failing state."""
    now = now or timezone.now()
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_attempt_at": now, "last_status_code": result.status_code,
              "last_error": result.error, "response_time_ms": result.response_time_ms,
              "response_excerpt": result.excerpt, "claimed_until": None}
    if result.ok:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now)
    else:
        window_end = delivery.window_started_at + dt.timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
        if now >= window_end:
            fields.update(status=DeliveryStatus.FAILED, gave_up_at=now)
        else:
            fields.update(next_attempt_at=min(now + retry_delay(attempts), window_end))
    tenant = delivery.tenant_id
    with transaction.atomic():
        # status-guarded: a delivery given up or sent again meanwhile (the admin, a disabled endpoint) stays so
        updated = WebhookDelivery.objects.for_tenant(tenant).filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts).update(**fields)
        if updated:
            _attempt_insert(delivery=delivery, result=result, now=now)
        endpoints = WebhookEndpoint.objects.for_tenant(tenant).filter(pk=delivery.endpoint_id)
        if result.ok:
            endpoints.exclude(failing_since=None).update(failing_since=None)
        else:
            endpoints.filter(failing_since=None).update(failing_since=now)
    if updated:
        for name, value in fields.items():
            setattr(delivery, name, value)
    return delivery


def _attempt_insert(*, delivery: WebhookDelivery, result: AttemptResult, now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_ATTEMPT_SQL, {
            "tenant_id": delivery.tenant_id, "delivery_id": delivery.pk, "retry": delivery.attempts > 0,
            "retry_trigger": AttemptTrigger.RETRY.value, "first": AttemptTrigger.FIRST.value,
            "send_again": AttemptTrigger.SEND_AGAIN.value, "at": now, "status_code": result.status_code,
            "error": result.error, "response_time_ms": result.response_time_ms, "excerpt": result.excerpt})


def webhook_deliveries_send(*, tenant, now: dt.datetime | None = None, max_rounds: int = 20) -> int:
    """Send the tenant's due deliveries, round after round (a lead's next event after its previous one),
    until none is due, `max_rounds` or `RUN_SECONDS` (beat's sweep comes back for the rest). Returns the
    attempts made."""
    sent, started = 0, time.monotonic()
    for _ in range(max_rounds):
        if time.monotonic() - started > RUN_SECONDS:
            break  # beat's sweep hands the rest to a worker within the minute
        ids = deliveries_claim(tenant=tenant, now=now or timezone.now())
        if not ids:
            break
        deliveries = (WebhookDelivery.objects.for_tenant(tenant).filter(pk__in=ids)
                      .select_related("endpoint", "event").order_by("id"))
        for delivery in deliveries:
            delivery_send(delivery=delivery, now=now)
            sent += 1
    return sent


def tenants_with_due_deliveries(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of tenants with a delivery due and not leased (retries, and deliveries whose task was lost)."""
    from leadmgmt.tenancy.cross_tenant import cross_tenant

    now = now or timezone.now()
    with cross_tenant("sweep"):
        return sorted(set(
            WebhookDelivery.objects.unscoped()
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True)
            .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
            .values_list("tenant_id", flat=True).distinct()))


def delivery_redeliver(*, delivery: WebhookDelivery, now: dt.datetime | None = None) -> bool:
    """"Send again": the delivery becomes pending, due now, with a fresh retry window (same event id, so the
    receiver can tell it is the same event). False when it is pending already (nothing to do)."""
    now = now or timezone.now()
    updated = (WebhookDelivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk)
               .exclude(status=DeliveryStatus.PENDING)
               .update(status=DeliveryStatus.PENDING, attempts=0, window_started_at=now,
                       next_attempt_at=now, claimed_until=None, delivered_at=None, gave_up_at=None))
    if updated:
        from .emit import _send_after_commit

        _send_after_commit(delivery.tenant_id)
    return bool(updated)


def webhook_log_purge(*, now: dt.datetime | None = None, batch: int = 10_000) -> int:
    """Beat, hourly: delete delivered and given-up deliveries older than `WEBHOOK_LOG_RETENTION_DAYS` (at most
    `batch` a run), then the events left without deliveries. Pending ones are kept whatever their age."""
    from leadmgmt.tenancy.cross_tenant import cross_tenant

    from ..models import WebhookEvent

    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    with cross_tenant("sweep"), transaction.atomic():
        old = (WebhookDelivery.objects.unscoped().exclude(status=DeliveryStatus.PENDING)
               .filter(created_at__lt=cutoff).values("pk")[:batch])
        deleted, _ = WebhookDelivery.objects.unscoped().filter(pk__in=list(old.values_list("pk", flat=True))).delete()
        WebhookEvent.objects.unscoped().filter(created_at__lt=cutoff, deliveries__isnull=True).delete()
    return deleted
