"""Admin for webhooks: a tenant admin's endpoints (events as checkboxes, the secret shown once when created or
rotated) and the read-only delivery log with a "Send again" action and each delivery's attempts. Other roles are refused; another
tenant's rows are not there; every write is audited."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.validators import URLValidator
from django.db import transaction

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.admin_base import (
    ReadOnlyTenantInline,
    TenantScopedAdmin,
)
from leadmgmt.tenancy.roles import WEBHOOKS_MANAGE, roles_for

from .models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint, WebhookEventType
from .services.delivery import delivery_redeliver
from .services.endpoints import webhook_endpoint_secret_rotate

WEBHOOK_ROLES = set(roles_for(WEBHOOKS_MANAGE))


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(max_length=2000, validators=[URLValidator(schemes=["http", "https"],
                                                                    message="Enter an http:// or https:// URL.")])
    events = forms.MultipleChoiceField(choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "is_active"]

    def clean_events(self):
        return sorted(set(self.cleaned_data["events"]))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantScopedAdmin):
    form = WebhookEndpointForm
    view_roles = change_roles = WEBHOOK_ROLES
    audit_action_prefix = "webhook"
    list_display = ["url", "events", "is_active", "failing_since", "disabled_at"]
    list_filter = ["is_active"]
    readonly_fields = ["failing_since", "disabled_at", "disabled_reason", "previous_secret_expires_at", "created_at"]
    actions = ["rotate_secret"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, f"Signing secret of {obj.url} (shown this once, store it now): {obj.secret}")

    @admin.action(description="Rotate the signing secret (the old one keeps signing for the grace period)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            with transaction.atomic():
                secret = webhook_endpoint_secret_rotate(endpoint=endpoint, actor=Actor.for_user(request.user))
            messages.warning(request, f"New signing secret of {endpoint.url} (shown this once): {secret}")


class WebhookDeliveryAttemptInline(ReadOnlyTenantInline):
    """A delivery's attempt history, oldest first: read-only (the sender writes it)."""

    model = WebhookDeliveryAttempt
    view_roles = WEBHOOK_ROLES
    fields = ("number", "trigger", "attempted_at", "status_code", "error", "response_time_ms", "response_excerpt")
    readonly_fields = fields
    ordering = ("number",)
    verbose_name_plural = "attempts"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    """The delivery log: what the last attempt got back, every attempt below; "Send again" re-queues deliveries
    (same event id)."""

    view_roles = change_roles = WEBHOOK_ROLES
    list_display = ["id", "event_type", "endpoint", "lead_id", "status", "attempts", "last_status_code",
                    "response_time_ms", "next_attempt_at", "created_at"]
    list_filter = ["status"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = ["endpoint", "event", "payload", "lead_id", "status", "attempts", "window_started_at",
                       "next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "response_time_ms",
                       "response_excerpt", "delivered_at", "gave_up_at", "created_at"]
    exclude = ["claimed_until"]
    inlines = [WebhookDeliveryAttemptInline]
    actions = ["send_again"]

    @admin.display(description="event")
    def event_type(self, obj) -> str:
        return obj.event.type

    @admin.display(description="payload")
    def payload(self, obj):
        return obj.event.payload

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send again")
    def send_again(self, request, queryset):
        queued = 0
        for delivery in queryset:
            with transaction.atomic():
                queued += delivery_redeliver(delivery=delivery)
        messages.success(request, f"{queued} deliveries queued to be sent again "
                                  f"({queryset.count() - queued} were pending already).")
