"""A real Celery worker process runs the signal tasks against the test database (no eager mode)."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leads.models import Lead, Signal
from leads.tasks import signals_process_task
from tests.support.factories import LeadFactory, api_key_for
from tests.support.worker import real_worker, wait_until

TIMEOUT = 30


@pytest.fixture
def worker_queue(tmp_path):
    """A real `celery worker` on a queue of its own that every task goes to."""
    with real_worker(tmp_path, name="test-worker") as started:
        yield started


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_signals_posted_through_the_api(tenant, worker_queue):
    queue, process, log = worker_queue
    lead = LeadFactory(tenant=tenant, email="ada@acme.example")
    _key, raw = api_key_for(tenant)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    latest = timezone.now() - timedelta(minutes=1)
    batch = [
        {"email": "ada@acme.example", "type": "pricing_page_view", "occurred_at": (latest - timedelta(minutes=5)).isoformat(),
         "external_id": "w-1"},
        {"lead_id": str(lead.id), "type": "demo_request", "occurred_at": latest.isoformat(), "external_id": "w-2"},
        {"email": "someone.new@acme.example", "type": "email_click", "occurred_at": latest.isoformat()},
    ]

    response = client.post("/api/v1/signals/", batch, format="json")

    assert response.status_code == 202, response.content
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted", "pending"]
    wait_until(lambda: not Signal.objects.unscoped().filter(lead__isnull=False, processed_at__isnull=True).exists(),
               process, log, "the worker to process the signals", TIMEOUT)
    lead.refresh_from_db()
    assert abs(lead.last_activity_at - latest) < timedelta(milliseconds=1)
    event = AuditEvent.objects.unscoped().get(action="lead.signals_processed", object_id=str(lead.id))
    assert event.actor_name == "Signal Agent" and len(event.metadata["signal_ids"]) == 2
    pending = Signal.objects.unscoped().get(email="someone.new@acme.example")
    assert pending.lead_id is None and pending.processed_at is None

    # Running the task again (a redelivery, the sweep) leaves the same state: on the real worker,
    # queued before a fresh signal so that the fresh one being processed proves it ran ...
    processed_ids = list(Signal.objects.unscoped().filter(lead=lead).values_list("id", flat=True))
    state = (list(Signal.objects.unscoped().filter(lead=lead).order_by("id").values_list("processed_at", flat=True)),
             lead.last_activity_at, AuditEvent.objects.unscoped().count())
    signals_process_task.delay(tenant_id=tenant.id, signal_ids=processed_ids)
    marker = client.post("/api/v1/signals/", {"email": "ada@acme.example", "type": "email_open",
                                              "occurred_at": (latest - timedelta(hours=1)).isoformat()}, format="json")
    marker_id = marker.json()["results"][0]["id"]
    wait_until(lambda: Signal.objects.unscoped().filter(id=marker_id, processed_at__isnull=False).exists(),
               process, log, "the worker to run the repeated task and the next one", TIMEOUT)
    lead.refresh_from_db()
    after = (list(Signal.objects.unscoped().filter(id__in=processed_ids).order_by("id").values_list("processed_at", flat=True)),
             lead.last_activity_at)
    assert after == state[:2]  # the older marker signal did not move last_activity_at back either
    # ... and in-process, twice more: nothing left to do.
    assert signals_process_task.apply(kwargs={"tenant_id": tenant.id, "signal_ids": processed_ids}).get() == 0
    assert signals_process_task.apply(kwargs={"tenant_id": tenant.id, "signal_ids": processed_ids}).get() == 0
    # Only the marker's own events were added (received + processed).
    assert AuditEvent.objects.unscoped().count() == state[2] + 2
    assert Lead.objects.unscoped().get(pk=lead.pk).last_activity_at == state[1]

    process.terminate()
    process.wait(timeout=15)
    assert process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
