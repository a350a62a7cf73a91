"""Outbound webhooks: the outbox, signed delivery to a real HTTP receiver, retries, give-up, order per lead."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from leadmgmt.webhooks.services.delivery import (
    delivery_redeliver,
    retry_delay,
    webhook_deliveries_send,
)
from leadmgmt.webhooks.services.emit import WebhookItem, webhook_emit, webhook_emit_bulk
from leadmgmt.webhooks.signing import signature, signature_verify
from tests.support.webhooks import closed_port_url, endpoint_for

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def emit(tenant, event_type="lead.created", *, data=None, lead_id=None, key=None, now=T0) -> int:
    with tenant_scope(tenant), transaction.atomic():
        return webhook_emit(tenant=tenant, event_type=event_type, data=data or {"n": 1}, lead_id=lead_id, key=key,
                            now=now)


def send(tenant, now) -> int:
    with tenant_scope(tenant):
        return webhook_deliveries_send(tenant=tenant, now=now)


def deliveries(tenant):
    return list(WebhookDelivery.objects.unscoped().filter(tenant=tenant).order_by("id"))


def test_a_delivery_is_signed_with_hmac_sha256_over_timestamp_and_body(tenant, webhook_receiver):
    endpoint = endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    lead_id = uuid.uuid4()
    assert emit(tenant, data={"lead": {"id": str(lead_id), "email": "ana@example.com"}}, lead_id=lead_id) == 1

    assert send(tenant, T0) == 1

    [request] = webhook_receiver.received()
    event = WebhookEvent.objects.unscoped().get(tenant=tenant)
    headers = request.headers
    assert headers["webhook-id"] == str(event.id)
    assert headers["content-type"] == "application/json"
    assert signature_verify(secret=endpoint.secret, header=headers["webhook-signature"],
                            timestamp=headers["webhook-timestamp"], body=request.body)
    assert headers["webhook-signature"] == "v1=" + signature(
        secret=endpoint.secret, timestamp=int(headers["webhook-timestamp"]), body=request.body)
    assert not signature_verify(secret="whsec_wrong", header=headers["webhook-signature"],
                                timestamp=headers["webhook-timestamp"], body=request.body)
    assert request.json == {"id": str(event.id), "type": "lead.created", "created_at": T0.isoformat(),
                            "data": {"lead": {"id": str(lead_id), "email": "ana@example.com"}}}
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.delivered_at == T0
    assert delivery.response_time_ms is not None and '"ok": true' in delivery.response_excerpt


def test_nothing_is_written_without_an_active_subscribed_endpoint_and_the_check_is_cached(
        tenant, other_tenant, webhook_receiver):
    endpoint_for(tenant, webhook_receiver.url(), ["lead.merged"])
    endpoint_for(tenant, webhook_receiver.url("/off"), ["lead.created"], is_active=False)
    endpoint_for(other_tenant, webhook_receiver.url("/other"), ["lead.created"])
    assert emit(tenant, "lead.created") == 0  # reads the subscriptions once …
    with CaptureQueriesContext(connection) as queries:
        assert emit(tenant, "lead.created") == 0  # … then no SQL at all for a while
    assert [q["sql"] for q in queries.captured_queries if "webhook" in q["sql"]] == []
    assert not WebhookEvent.objects.unscoped().filter(tenant=tenant).exists()
    assert emit(tenant, "lead.merged") == 1


def test_an_endpoint_saved_in_this_process_is_seen_at_once(tenant, webhook_receiver):
    assert emit(tenant) == 0
    with tenant_scope(tenant):
        WebhookEndpoint(tenant=tenant, url=webhook_receiver.url(), events=["lead.created"]).save()
    assert emit(tenant) == 1


def test_the_same_event_emitted_twice_is_written_and_sent_once(tenant, webhook_receiver):
    endpoint_for(tenant, webhook_receiver.url(), ["sla.breached"])
    assert emit(tenant, "sla.breached", key="clock-7") == 1
    assert emit(tenant, "sla.breached", key="clock-7") == 0
    assert emit(tenant, "sla.breached", key="clock-8") == 1
    send(tenant, T0)
    ids = [r.headers["webhook-id"] for r in webhook_receiver.received()]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_a_batch_is_one_statement_with_one_delivery_per_endpoint_in_order(tenant, webhook_receiver):
    first = endpoint_for(tenant, webhook_receiver.url("/a"), ["lead.created"])
    second = endpoint_for(tenant, webhook_receiver.url("/b"), ["lead.created", "lead.merged"])
    items = [WebhookItem(data={"n": n}, lead_id=uuid.uuid4()) for n in range(5)]
    with tenant_scope(tenant), transaction.atomic():
        webhook_emit_bulk(tenant=tenant, event_type="lead.merged", items=items[:1], now=T0)  # subscriptions read
        with CaptureQueriesContext(connection) as queries:
            assert webhook_emit_bulk(tenant=tenant, event_type="lead.created", items=items, now=T0) == 10
    assert len(queries.captured_queries) == 1
    rows = deliveries(tenant)[1:]
    assert [(d.endpoint_id, d.event.payload["data"]["n"]) for d in rows] == [
        (endpoint.pk, n) for n in range(5) for endpoint in (first, second)]


def test_a_500_is_retried_with_backoff_and_then_delivered_with_the_same_event_id(tenant, webhook_receiver):
    endpoint = endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    emit(tenant)
    webhook_receiver.answer(500)

    send(tenant, T0)
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1 and delivery.last_status_code == 500
    assert T0 + dt.timedelta(seconds=24) <= delivery.next_attempt_at <= T0 + dt.timedelta(seconds=36)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == T0

    assert send(tenant, T0 + dt.timedelta(seconds=20)) == 0  # not due yet
    assert send(tenant, delivery.next_attempt_at) == 1
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    first, second = webhook_receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_refused_connection_is_a_failed_attempt_with_its_error(tenant):
    endpoint_for(tenant, closed_port_url(), ["lead.created"])
    emit(tenant)
    send(tenant, T0)
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code is None
    assert "Connection refused" in delivery.last_error or "Errno" in delivery.last_error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]"])
def test_an_endpoint_on_a_non_public_address_is_refused_unless_allowed(tenant, webhook_receiver, settings, host):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    port = webhook_receiver.base_url.rsplit(":", 1)[1]
    endpoint_for(tenant, f"http://{host}:{port}/hook", ["lead.created"])
    emit(tenant)
    send(tenant, T0)
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code is None
    assert delivery.last_error.startswith("Refused:") and "non-public address" in delivery.last_error
    assert webhook_receiver.received() == []


def test_retries_back_off_exponentially_with_jitter_and_a_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS = 30, 3600
    for attempts, base in ((1, 30), (2, 60), (3, 120), (6, 960), (20, 3600)):
        delays = {retry_delay(attempts).total_seconds() for _ in range(20)}
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays) and len(delays) > 1


def test_a_delivery_failing_for_a_day_is_given_up(tenant, webhook_receiver):
    endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    emit(tenant)
    webhook_receiver.answer(*[503] * 100)
    now = T0
    for _ in range(40):
        if send(tenant, now) == 0:
            break
        [delivery] = deliveries(tenant)
        if delivery.status != DeliveryStatus.PENDING:
            break
        now = delivery.next_attempt_at
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.gave_up_at == T0 + dt.timedelta(hours=24)  # the last try is at the window's end
    assert 10 <= delivery.attempts <= 20
    assert send(tenant, T0 + dt.timedelta(days=3)) == 0


def test_one_leads_events_reach_an_endpoint_in_order_while_other_leads_go_on(tenant, webhook_receiver):
    endpoint_for(tenant, webhook_receiver.url(), ["lead.created", "lead.assigned"])
    lead_a, lead_b = uuid.uuid4(), uuid.uuid4()
    emit(tenant, "lead.created", data={"step": "a1"}, lead_id=lead_a)
    emit(tenant, "lead.assigned", data={"step": "a2"}, lead_id=lead_a)
    emit(tenant, "lead.created", data={"step": "b1"}, lead_id=lead_b)
    webhook_receiver.answer(500)  # a1 fails

    send(tenant, T0)
    steps = [r.json["data"]["step"] for r in webhook_receiver.received()]
    assert steps == ["a1", "b1"]  # a2 waits behind a1; b goes on
    a1 = deliveries(tenant)[0]
    send(tenant, a1.next_attempt_at)
    steps = [r.json["data"]["step"] for r in webhook_receiver.received()]
    assert steps == ["a1", "b1", "a1", "a2"]
    assert {d.status for d in deliveries(tenant)} == {DeliveryStatus.DELIVERED}


def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(tenant, webhook_receiver, settings):
    from leadmgmt.audit.actors import SYSTEM
    from leadmgmt.webhooks.services.endpoints import webhook_endpoint_secret_rotate

    settings.WEBHOOK_SECRET_GRACE_HOURS = 24
    endpoint = endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    old = endpoint.secret
    with tenant_scope(tenant):
        new = webhook_endpoint_secret_rotate(endpoint=endpoint, actor=SYSTEM)
    assert new != old and new.startswith("whsec_")
    emit(tenant)
    send(tenant, T0)
    [request] = webhook_receiver.received()
    header, ts = request.headers["webhook-signature"], request.headers["webhook-timestamp"]
    assert len(header.split()) == 2
    assert signature_verify(secret=new, header=header, timestamp=ts, body=request.body)
    assert signature_verify(secret=old, header=header, timestamp=ts, body=request.body)

    WebhookEndpoint.objects.unscoped().filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - dt.timedelta(seconds=1))
    emit(tenant)
    send(tenant, T0)
    request = webhook_receiver.received()[-1]
    header, ts = request.headers["webhook-signature"], request.headers["webhook-timestamp"]
    assert len(header.split()) == 1
    assert signature_verify(secret=new, header=header, timestamp=ts, body=request.body)
    assert not signature_verify(secret=old, header=header, timestamp=ts, body=request.body)


def test_send_again_resends_a_delivered_event_with_its_id_after_commit(tenant, webhook_receiver,
                                                                       django_capture_on_commit_callbacks):
    endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        emit(tenant)  # after commit, the (eager) task sends it
    assert len(callbacks) == 1 and len(webhook_receiver.received()) == 1
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.DELIVERED
    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        assert delivery_redeliver(delivery=delivery) is True
        assert delivery_redeliver(delivery=delivery) is False  # already pending: nothing more to do
    first, second = webhook_receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1


def test_the_log_keeps_finished_deliveries_for_the_retention_period_and_pending_ones_for_ever(tenant, other_tenant,
                                                                                              settings):
    from leadmgmt.webhooks.services.delivery import webhook_log_purge

    settings.WEBHOOK_LOG_RETENTION_DAYS = 30
    for owner in (tenant, other_tenant):
        endpoint_for(owner, "http://127.0.0.1:9/hook", ["lead.created"])
        for n in range(3):
            emit(owner, data={"n": n}, now=T0 - dt.timedelta(days=40))
        emit(owner, data={"n": "recent"}, now=T0 - dt.timedelta(days=10))
    old = WebhookDelivery.objects.unscoped().filter(created_at__lt=T0 - dt.timedelta(days=30))
    old.filter(event__payload__data__n__in=[0, 1]).update(status=DeliveryStatus.DELIVERED)  # n=2 stays pending
    assert webhook_log_purge(now=T0) == 4  # two of each tenant
    left = sorted((d.tenant_id, str(d.event.payload["data"]["n"])) for d in WebhookDelivery.objects.unscoped().all())
    assert left == sorted([(tenant.pk, "2"), (tenant.pk, "recent"), (other_tenant.pk, "2"),
                           (other_tenant.pk, "recent")])
    assert WebhookEvent.objects.unscoped().count() == 4


def test_a_claim_leases_its_batch_for_as_long_as_sending_it_may_take(tenant, settings):
    from leadmgmt.webhooks.services.delivery import deliveries_claim

    settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_CLAIM_BATCH = 10, 50
    endpoint_for(tenant, "http://127.0.0.1:9/hook", ["lead.created"])
    for n in range(15):
        emit(tenant, data={"n": n}, lead_id=uuid.uuid4())
    with tenant_scope(tenant):
        first = deliveries_claim(tenant=tenant, now=T0)
        assert len(first) == 12  # 120 s of 10 s timeouts: what one run can send
        lease = T0 + dt.timedelta(seconds=12 * 15 + 60)
        assert {d.claimed_until for d in deliveries(tenant) if d.pk in first} == {lease}
        assert len(deliveries_claim(tenant=tenant, now=lease - dt.timedelta(seconds=1))) == 3  # the rest only
        assert len(deliveries_claim(tenant=tenant, now=lease + dt.timedelta(seconds=1))) == 12  # a lost worker's
