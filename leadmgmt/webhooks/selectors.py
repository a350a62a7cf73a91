"""Reads of the webhooks app: a tenant's endpoints, an endpoint's delivery log and a delivery's attempts."""
from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint


def webhook_endpoint_list(*, tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_tenant(tenant).order_by("pk")


def webhook_endpoint_get(*, tenant, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.for_tenant(tenant).filter(pk=endpoint_id).first()


def webhook_delivery_log(*, tenant, endpoint: WebhookEndpoint, status: str | None = None
                         ) -> QuerySet[WebhookDelivery]:
    """The endpoint's deliveries, newest first, with their event's type (one query per page)."""
    rows = WebhookDelivery.objects.for_tenant(tenant).filter(endpoint=endpoint).select_related("event")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-created_at", "-pk")


def webhook_delivery_get(*, tenant, delivery_id: int) -> WebhookDelivery | None:
    return WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery_id).first()


def webhook_delivery_detail(*, tenant, delivery_id: int) -> WebhookDelivery | None:
    """A delivery with its event's type and its attempt history, oldest first (two queries however many)."""
    attempts = WebhookDeliveryAttempt.objects.for_tenant(tenant).order_by("number")
    return (WebhookDelivery.objects.for_tenant(tenant).filter(pk=delivery_id).select_related("event")
            .prefetch_related(Prefetch("attempt_history", queryset=attempts)).first())
