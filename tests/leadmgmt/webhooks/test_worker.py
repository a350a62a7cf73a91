"""End to end on a real Celery worker and a real HTTP receiver: a lead posted to the public intake is
announced (lead.created, then lead.assigned) signed, in order; a 500 is retried by beat's sweep."""
from __future__ import annotations

import json

import pytest
from django.db.models import F
from django.test import Client
from django.utils import timezone

from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leadmgmt.webhooks.models import DeliveryStatus, WebhookDelivery
from leadmgmt.webhooks.signing import signature_verify
from leadmgmt.webhooks.tasks import webhook_deliveries_sweep_task
from leads.models import Lead, LeadForm
from tests.support.webhooks import endpoint_for
from tests.support.worker import real_worker, wait_until


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_captured_lead_is_announced_signed_in_order_and_a_500_is_retried(tmp_path, webhook_receiver):
    provisioned = tenant_create(slug="acme-wh", name="Acme WH", admin_email="admin@acme-wh.example")
    tenant = provisioned.tenant
    membership_upsert(tenant=tenant, email="sdr@acme-wh.example", role=Role.SDR, team_name=DEFAULT_TEAM)
    endpoint = endpoint_for(tenant, webhook_receiver.url(), ["lead.created", "lead.assigned"])
    form = LeadForm.objects.unscoped().filter(tenant=tenant).first()
    webhook_receiver.answer(500)  # the first request fails: lead.assigned must wait behind lead.created

    with real_worker(tmp_path, name="test-webhooks", env={"WEBHOOK_ALLOW_PRIVATE_URLS": "1"}) as (_queue, process, log):
        response = Client().post("/api/v1/intake/", data=json.dumps({"email": "wanda@prospect.example",
                                                                      "first_name": "Wanda"}),
                                 content_type="application/json", HTTP_X_FORM_KEY=form.key)
        assert response.status_code == 201, response.content
        lead = Lead.objects.unscoped().get(email="wanda@prospect.example")
        deliveries = WebhookDelivery.objects.unscoped().filter(tenant=tenant)
        wait_until(lambda: deliveries.filter(attempts=1).exists() and deliveries.count() == 2, process, log,
                   "the first attempt and both deliveries")
        assert len(webhook_receiver.received()) == 1  # lead.assigned waits behind the failed lead.created
        # Time passes: the retry is due; beat's sweep hands it to the worker.
        deliveries.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now(),
                                                                window_started_at=F("window_started_at"))
        webhook_deliveries_sweep_task.delay()
        wait_until(lambda: deliveries.filter(status=DeliveryStatus.DELIVERED).count() == 2, process, log,
                   "both deliveries delivered")

    requests = webhook_receiver.received()
    assert [r.json["type"] for r in requests] == ["lead.created", "lead.created", "lead.assigned"]
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"] != requests[2].headers["webhook-id"]
    for request in requests:
        assert signature_verify(secret=endpoint.secret, header=request.headers["webhook-signature"],
                                timestamp=request.headers["webhook-timestamp"], body=request.body)
        assert request.json["data"]["lead"]["id"] == str(lead.pk)
    assert requests[2].json["data"]["owner"]["email"] == "sdr@acme-wh.example"
    assert "ERROR" not in log.read_text(errors="replace")
