"""DRF serializers of the signals API: input validation and response shapes."""
from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from leadmgmt.api import SlugTextField, TextField, text_problem

from .models import Signal
from .normalize import email_normalize
from .services.signals import SignalInput, SignalStatus

# --- Signals ---------------------------------------------------------------------------------


class SignalInSerializer(serializers.Serializer):
    """One behavioural signal. Identify the person by `email` or by `lead_id`, not both."""

    email = TextField(
        required=False, allow_blank=True, allow_null=True, max_length=320,
        help_text="The person's email; a signal for an email that is not a lead yet is kept and "
        "attached when the lead arrives.",
    )
    lead_id = serializers.UUIDField(required=False, allow_null=True, help_text="A lead of this tenant.")
    type = SlugTextField(
        max_length=64, help_text="A built-in type (pricing_page_view, email_click, demo_request …) "
        "or one of the tenant's own signal types.",
    )
    occurred_at = serializers.DateTimeField(help_text="When it happened (ISO 8601; not in the future).")
    external_id = TextField(
        required=False, allow_blank=True, max_length=200, default="",
        help_text="Your id of the event; a signal re-sent with the same external_id is a duplicate "
        "and writes nothing, which makes retries safe.",
    )
    properties = serializers.DictField(
        required=False, default=dict, help_text="A JSON object of event details (url, campaign …), bounded in size."
    )

    def validate_email(self, value):
        try:
            return email_normalize(value or "")  # the same form intake stores, so they match
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_external_id(self, value):
        return value.strip()

    def validate_occurred_at(self, value):
        skew = timedelta(seconds=settings.SIGNALS_MAX_FUTURE_SKEW_SECONDS)
        if value > timezone.now() + skew:
            raise serializers.ValidationError("Must not be in the future.")
        return value

    def validate_properties(self, value):
        problem = text_problem(value)  # jsonb stores neither U+0000 nor a lone surrogate, keys included
        if problem:
            raise serializers.ValidationError(problem)
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > settings.SIGNALS_MAX_PROPERTIES_BYTES:
            raise serializers.ValidationError(
                f"Must be at most {settings.SIGNALS_MAX_PROPERTIES_BYTES} bytes of JSON ({size} given)."
            )
        return value

    def validate(self, attrs):
        email, lead_id = attrs.get("email") or "", attrs.get("lead_id")
        if not email and lead_id is None:
            raise serializers.ValidationError({"email": ["Give the person's email or a lead_id."]})
        if email and lead_id is not None:
            raise serializers.ValidationError({"lead_id": ["Give either email or lead_id, not both."]})
        attrs["email"] = email
        return attrs

    def to_signal_input(self, index: int) -> SignalInput:
        data = self.validated_data
        return SignalInput(
            index=index, type=data["type"], occurred_at=data["occurred_at"], email=data["email"],
            lead_id=data.get("lead_id"), external_id=data["external_id"], properties=data["properties"],
        )


class SignalItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the signal in the request (0 for a single object).")
    status = serializers.ChoiceField(choices=SignalStatus.choices)
    id = serializers.IntegerField(required=False, help_text="The stored signal (the earlier one for a duplicate).")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Field name → messages, for status `error`.",
    )


class SignalBatchResultSerializer(serializers.Serializer):
    results = SignalItemResultSerializer(many=True)
    accepted = serializers.IntegerField(help_text="Signals stored (pending ones included).")
    pending = serializers.IntegerField(help_text="Stored signals waiting for their lead.")
    duplicates = serializers.IntegerField()
    errors = serializers.IntegerField()


class SignalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Signal
        fields = ["id", "type", "occurred_at", "external_id", "properties", "received_at", "processed_at"]
        read_only_fields = fields
