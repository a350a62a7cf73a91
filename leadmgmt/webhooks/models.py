"""Outbound webhooks: where a tenant wants its events sent, the events (the outbox) and their deliveries.

A WebhookEndpoint is a URL the tenant's admin registered with the event types it wants and the secret
that signs every request (kept, since it signs; shown to the admin only when created or rotated; the
previous one keeps signing alongside for a grace period after a rotation). A WebhookEvent is one thing
that happened (`lead.created` …), written in the transaction of the step that caused it, only when an
active endpoint of the tenant subscribes to its type; its id is the `Webhook-Id` receivers deduplicate by.
A WebhookDelivery is one event to one endpoint: its status, the due time of its next attempt (a column
the worker and beat scan), and what the last attempt got back (the delivery log). A WebhookDeliveryAttempt is
one POST of a delivery and what it got back, numbered 1, 2, … across retries and "send again" (its history).
"""
from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


class WebhookEventType(models.TextChoices):
    """The catalogue of events an endpoint may subscribe to (public names: keep them as they are)."""

    LEAD_CREATED = "lead.created", "A new lead was captured"
    LEAD_MERGED = "lead.merged", "A submission was merged into an existing lead"
    LEAD_ASSIGNED = "lead.assigned", "A lead got an owner (or a new one)"
    LEAD_BAND_CHANGED = "lead.band_changed", "A lead's score band changed"
    LEAD_QUALIFIED = "lead.qualified", "A lead was qualified"
    LEAD_CONVERTED = "lead.converted", "A lead was converted"
    LEAD_REJECTED = "lead.rejected", "A lead was rejected by sales"
    SLA_BREACHED = "sla.breached", "A lead's response SLA was breached"
    IMPORT_FINISHED = "import.finished", "A lead import finished"


def webhook_secret_new() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes (URL-safe base64)."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(TenantOwned):
    """A URL of the tenant's that receives the event types it subscribes to, signed with its secret."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = ArrayField(models.CharField(max_length=40, choices=WebhookEventType.choices), default=list,
                        help_text="The event types sent to this endpoint.")
    secret = models.CharField(max_length=100, default=webhook_secret_new, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False,
                                         help_text="First failed attempt since the last success.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhookendpoint_tenant_active")]

    def __str__(self) -> str:
        return self.url

    def secrets_signing(self, now=None) -> list[str]:
        """The secrets each request is signed with: the current one, and the previous during its grace period."""
        now = now or timezone.now()
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookEvent(TenantOwned):
    """One event of the outbox: its id (`Webhook-Id`), type, lead (if any) and the JSON sent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    lead_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="webhookevent_tenant_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class WebhookDelivery(TenantOwned):
    """One event to one endpoint: pending until a 2xx answer, retried with backoff, given up after the window.

    `lead_id` (the event's) keeps deliveries of one lead to one endpoint in order: a delivery is not sent
    while an earlier (lower id) one of the same endpoint and lead is pending."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    lead_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now,
                                             help_text="Retries stop a day after this (creation or 'send again').")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True,
                                         help_text="A worker is sending it until then (a lease; lost workers' expire).")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["tenant", "endpoint", "event"],
                                               name="webhookdelivery_once_per_endpoint",
                                               violation_error_message="This event is already delivered to this endpoint.")]
        indexes = [
            models.Index(fields=["tenant", "next_attempt_at"], condition=Q(status="pending"),
                         name="webhookdelivery_tenant_due"),
            models.Index(fields=["tenant", "endpoint", "lead_id", "id"], condition=Q(status="pending"),
                         name="webhookdelivery_tenant_order"),
            models.Index(fields=["tenant", "endpoint", "-created_at"], name="webhookdelivery_tenant_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class AttemptTrigger(models.TextChoices):
    FIRST = "first", "First attempt"
    RETRY = "retry", "Scheduled retry"
    SEND_AGAIN = "send_again", "Send again"


class WebhookDeliveryAttempt(TenantOwned):
    """One attempt of a delivery: when, what came back (a status code, or none and the error: a timeout, a refused
    connection), how long it took, and what caused it. `number` counts every attempt of the delivery (1, 2, …),
    while the delivery's `attempts` starts again at 0 with "send again"; written with the delivery's outcome."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_history",
                                 db_index=False)
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=12, choices=AttemptTrigger.choices)
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no answer (see the error).")
    error = models.CharField(max_length=300, blank=True)
    response_time_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["tenant", "delivery", "number"],
                                               name="webhookdeliveryattempt_number_once",
                                               violation_error_message="This attempt of the delivery is recorded.")]

    def __str__(self) -> str:
        return f"#{self.number} of {self.delivery_id} ({self.status_code or self.error or '-'})"
