"""A delivery's attempt history: one row per attempt made (to a real HTTP receiver), numbered across retries and
"send again", written with the delivery's outcome and never twice for one attempt."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.webhooks.models import (
    AttemptTrigger,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from leadmgmt.webhooks.services.delivery import (
    AttemptResult,
    delivery_record,
    delivery_redeliver,
    webhook_deliveries_send,
)
from tests.support.webhooks import closed_port_url, endpoint_for

from .test_delivery import T0, deliveries, emit, send

pytestmark = pytest.mark.django_db


def history(delivery) -> list[WebhookDeliveryAttempt]:
    return list(WebhookDeliveryAttempt.objects.unscoped().filter(delivery_id=delivery.pk).order_by("number"))


def test_a_500_then_a_200_are_two_attempts_numbered_with_their_codes_times_and_answers(tenant, webhook_receiver):
    endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    emit(tenant)
    webhook_receiver.answer(500)

    send(tenant, T0)
    [delivery] = deliveries(tenant)
    retry_at = delivery.next_attempt_at
    send(tenant, retry_at)

    [delivery] = deliveries(tenant)
    first, second = history(delivery)
    assert (first.number, first.trigger, first.attempted_at, first.status_code, first.error) == (
        1, AttemptTrigger.FIRST, T0, 500, "")
    assert (second.number, second.trigger, second.attempted_at, second.status_code, second.error) == (
        2, AttemptTrigger.RETRY, retry_at, 200, "")
    assert first.response_excerpt == '{"ok": false, "n": 1}' and second.response_excerpt == '{"ok": true, "n": 2}'
    assert first.response_time_ms is not None and second.response_time_ms is not None
    assert {a.tenant_id for a in (first, second)} == {tenant.pk}
    # The delivery still keeps its last attempt, as the log shows it.
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.response_excerpt) == (
        DeliveryStatus.DELIVERED, 2, 200, second.response_excerpt)
    assert delivery.response_time_ms == second.response_time_ms and delivery.last_attempt_at == retry_at


def test_an_attempt_nothing_answered_has_no_status_code_and_its_error(tenant):
    endpoint_for(tenant, closed_port_url(), ["lead.created"])
    emit(tenant)

    send(tenant, T0)

    [delivery] = deliveries(tenant)
    [attempt] = history(delivery)
    assert (attempt.number, attempt.status_code, attempt.response_excerpt) == (1, None, "")
    assert attempt.error == delivery.last_error and ("Connection refused" in attempt.error or "Errno" in attempt.error)


def test_send_again_adds_a_further_attempt_after_the_earlier_ones(tenant, webhook_receiver,
                                                                  django_capture_on_commit_callbacks):
    endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    webhook_receiver.answer(503)
    with django_capture_on_commit_callbacks(execute=True):
        emit(tenant, now=timezone.now())  # after commit, the (eager) task sends it
    send(tenant, deliveries(tenant)[0].next_attempt_at)
    [delivery] = deliveries(tenant)
    assert delivery.status == DeliveryStatus.DELIVERED and len(history(delivery)) == 2

    with tenant_scope(tenant), django_capture_on_commit_callbacks(execute=True):
        assert delivery_redeliver(delivery=delivery)

    [delivery] = deliveries(tenant)
    assert len(webhook_receiver.received()) == 3
    assert delivery.attempts == 1  # the new retry window's
    assert [(a.number, a.trigger, a.status_code) for a in history(delivery)] == [
        (1, AttemptTrigger.FIRST, 503), (2, AttemptTrigger.RETRY, 200), (3, AttemptTrigger.SEND_AGAIN, 200)]


def test_an_attempt_is_recorded_once_whoever_records_it_again(tenant, webhook_receiver):
    """A worker whose lease ran out records after another worker did (the same delivery as it was claimed): the
    guarded update refuses it, and so does the history. A re-run of the task finds nothing due."""
    endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    emit(tenant)
    webhook_receiver.answer(500)
    with tenant_scope(tenant):
        claimed = WebhookDelivery.objects.select_related("endpoint", "event").get()
        assert webhook_deliveries_send(tenant=tenant, now=T0) == 1
        late = delivery_record(delivery=claimed, now=T0 + dt.timedelta(seconds=5), result=AttemptResult(
            ok=True, status_code=200, response_time_ms=3, excerpt="late", error=""))
        assert late.attempts == 0
        assert webhook_deliveries_send(tenant=tenant, now=T0) == 0  # the task again: not due yet

    [delivery] = deliveries(tenant)
    assert delivery.attempts == 1
    assert [(a.number, a.status_code) for a in history(delivery)] == [(1, 500)]


def test_attempts_go_with_their_delivery(tenant, webhook_receiver):
    from leadmgmt.audit.actors import SYSTEM
    from leadmgmt.webhooks.services.endpoints import webhook_endpoint_delete

    endpoint = endpoint_for(tenant, webhook_receiver.url(), ["lead.created"])
    emit(tenant)
    send(tenant, T0)
    assert WebhookDeliveryAttempt.objects.unscoped().count() == 1
    with tenant_scope(tenant):
        webhook_endpoint_delete(endpoint=endpoint, actor=SYSTEM)
    assert not WebhookDeliveryAttempt.objects.unscoped().exists()
