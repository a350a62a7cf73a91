"""An endpoint failing for WEBHOOK_DISABLE_AFTER_DAYS is disabled, its pending deliveries given up, and the
tenant's admins are told in the app and by email (a real SMTP server)."""
from __future__ import annotations

import datetime as dt

import pytest

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from leadmgmt.webhooks.services.emit import webhook_subscribed
from leadmgmt.webhooks.services.endpoints import webhook_endpoints_disable_failing
from routing.models import Notification
from routing.tasks import notification_emails_task
from tests.support.sla import smtp_server  # noqa: F401 - fixture
from tests.support.webhooks import endpoint_for

from .test_api import delivery_for

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_an_endpoint_failing_for_n_days_is_disabled_and_its_admins_are_told(
        tenant, other_tenant, make_member, settings, smtp_server):  # noqa: F811
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 3
    admin = make_member(tenant, role=Role.ADMIN)
    sdr = make_member(tenant, role=Role.SDR)
    their_admin = make_member(other_tenant, role=Role.ADMIN)
    failing = endpoint_for(tenant, "https://down.example.com/hook", ["lead.created"])
    recent = endpoint_for(tenant, "https://flaky.example.com/hook", ["lead.created"])
    theirs = endpoint_for(other_tenant, "https://globex.example.com/hook", ["lead.created"])
    WebhookEndpoint.objects.unscoped().filter(pk__in=[failing.pk, theirs.pk]).update(
        failing_since=NOW - dt.timedelta(days=3, minutes=1))
    WebhookEndpoint.objects.unscoped().filter(pk=recent.pk).update(failing_since=NOW - dt.timedelta(days=2))
    pending = delivery_for(failing, status=DeliveryStatus.PENDING)

    assert sorted(webhook_endpoints_disable_failing(now=NOW)) == sorted([failing.pk, theirs.pk])
    assert webhook_endpoints_disable_failing(now=NOW) == []  # once

    failing.refresh_from_db()
    assert (failing.is_active, failing.disabled_at) == (False, NOW) and "3 days" in failing.disabled_reason
    assert WebhookEndpoint.objects.unscoped().get(pk=recent.pk).is_active
    pending = WebhookDelivery.objects.unscoped().get(pk=pending.pk)
    assert (pending.status, pending.gave_up_at, pending.last_error) == (DeliveryStatus.FAILED, NOW,
                                                                       "Endpoint disabled.")
    assert AuditEvent.objects.unscoped().filter(action="webhook.disabled", object_id=str(failing.pk)).exists()
    assert not webhook_subscribed(tenant=other_tenant, event_type="lead.created")  # the cache forgot it

    notices = Notification.objects.unscoped().filter(kind="webhook_disabled")
    assert sorted((n.tenant_id, n.user_id) for n in notices) == sorted([(tenant.pk, admin.pk),
                                                                         (other_tenant.pk, their_admin.pk)])
    assert not notices.filter(user=sdr).exists()
    notice = notices.get(user=admin)
    assert notice.title == "Webhook disabled: https://down.example.com/hook" and notice.email_due

    notification_emails_task.apply(kwargs={"now": (NOW + dt.timedelta(minutes=1)).isoformat()}).get()
    to = sorted(address for message in smtp_server.messages for address in message["to"])
    assert to == sorted([admin.email, their_admin.email])
    assert all("Webhook disabled" in message["subject"] for message in smtp_server.messages)
