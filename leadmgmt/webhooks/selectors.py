"""Reads of the webhooks app: a tenant's endpoints and an endpoint's delivery log."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import WebhookDelivery, WebhookEndpoint


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
