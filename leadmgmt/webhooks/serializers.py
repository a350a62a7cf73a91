"""Serializers of the webhooks API: endpoints (the secret only where it is shown once), deliveries and their
attempts."""
from __future__ import annotations

from django.core.validators import URLValidator
from rest_framework import serializers

from leadmgmt.api import TextField

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint, WebhookEventType

_URL = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// URL.")


class WebhookUrlField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=2000, validators=[_URL], **kwargs)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "is_active", "disabled_at", "disabled_reason",
                  "failing_since", "previous_secret_expires_at", "created_at", "updated_at"]
        read_only_fields = fields


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """An endpoint as created or rotated: with its signing secret, shown this once."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointInSerializer(serializers.Serializer):
    url = WebhookUrlField()
    description = TextField(max_length=200, required=False, allow_blank=True)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices), allow_empty=False, max_length=20,
        help_text="Event types to send: " + ", ".join(WebhookEventType.values) + ".")
    is_active = serializers.BooleanField(required=False)

    def validate_events(self, value):
        return sorted(set(value))


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint_id", "event_id", "event_type", "lead_id", "status", "attempts", "next_attempt_at",
                  "last_attempt_at", "last_status_code", "last_error", "response_time_ms", "response_excerpt",
                  "delivered_at", "gave_up_at", "created_at"]
        read_only_fields = fields


class WebhookDeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDeliveryAttempt
        fields = ["number", "trigger", "attempted_at", "status_code", "error", "response_time_ms", "response_excerpt"]
        read_only_fields = fields
        extra_kwargs = {"status_code": {"help_text": "Empty when nothing answered (a timeout, a refused connection: "
                                                     "see `error`)."}}


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    """A delivery with every attempt made, oldest first (`attempts` counts those of the current retry window:
    "send again" starts it at 0; `attempt_history` keeps them all, numbered 1, 2, …)."""

    attempt_history = WebhookDeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "attempt_history"]
        read_only_fields = fields
