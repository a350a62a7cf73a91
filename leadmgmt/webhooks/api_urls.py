"""Webhooks API routes (under /api/v1/)."""
from django.urls import path

from . import api

urlpatterns = [
    path("webhooks/", api.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", api.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/rotate-secret/", api.WebhookRotateSecretView.as_view(), name="webhook-rotate-secret"),
    path("webhooks/<int:pk>/deliveries/", api.WebhookDeliveriesView.as_view(), name="webhook-deliveries"),
    path("webhooks/deliveries/<int:pk>/", api.WebhookDeliveryDetailView.as_view(), name="webhook-delivery-detail"),
    path("webhooks/deliveries/<int:pk>/redeliver/", api.WebhookRedeliverView.as_view(), name="webhook-redeliver"),
]
