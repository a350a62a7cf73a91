"""Managing endpoints: create, edit, rotate the secret, delete; disable those failing for days.

Each write is one transaction with its audit event. The secret is returned by `webhook_endpoint_create` and
`webhook_endpoint_secret_rotate` only (the API shows it once); rotating keeps the previous secret signing
alongside the new one for `WEBHOOK_SECRET_GRACE_HOURS`, so receivers can switch without losing events.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Membership
from leadmgmt.tenancy.roles import WEBHOOKS_MANAGE, roles_for

from ..events import webhook_endpoint_disabled
from ..models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, webhook_secret_new

log = logging.getLogger(__name__)

EDITABLE = ("url", "description", "events", "is_active")


@transaction.atomic
def webhook_endpoint_create(*, tenant, actor: Actor, url: str, events: list[str], description: str = "",
                            is_active: bool = True) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (read it off the returned row: it is shown once)."""
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, url=url, events=sorted(set(events)),
                                              description=description, is_active=is_active)
    audit_record(tenant=tenant, actor=actor, action="webhook.created", obj=endpoint,
                 changes={"url": [None, url], "events": [None, endpoint.events]})
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, **values) -> WebhookEndpoint:
    """Change url, description, events or is_active. Re-activating clears the disabled state and the
    failing streak (the admin says the endpoint is fixed)."""
    changes = {}
    for name, value in values.items():
        if name not in EDITABLE:
            raise TypeError(f"{name} is not editable")
        if name == "events":
            value = sorted(set(value))
        if getattr(endpoint, name) != value:
            changes[name] = [getattr(endpoint, name), value]
            setattr(endpoint, name, value)
    if not changes:
        return endpoint
    fields = set(changes)
    if changes.get("is_active") == [False, True]:
        endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
        fields |= {"disabled_at", "disabled_reason", "failing_since"}
    endpoint.save(update_fields=sorted(fields | {"updated_at"}))
    audit_record(tenant=endpoint.tenant, actor=actor, action="webhook.updated", obj=endpoint, changes=changes)
    return endpoint


@transaction.atomic
def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint, actor: Actor,
                                   now: dt.datetime | None = None) -> str:
    """A new secret (returned, to show once); the old one signs too for the grace period."""
    now = now or timezone.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + dt.timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
    endpoint.secret = webhook_secret_new()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    audit_record(tenant=endpoint.tenant, actor=actor, action="webhook.secret_rotated", obj=endpoint,
                 metadata={"previous_valid_until": endpoint.previous_secret_expires_at})
    return endpoint.secret


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """Delete the endpoint and its delivery log."""
    audit_record(tenant=endpoint.tenant, actor=actor, action="webhook.deleted", obj=endpoint,
                 changes={"url": [endpoint.url, None]})
    endpoint.delete()


def webhook_endpoints_disable_failing(*, now: dt.datetime | None = None) -> list[int]:
    """Beat: disable every active endpoint whose attempts have all failed for `WEBHOOK_DISABLE_AFTER_DAYS`;
    give up its pending deliveries and tell the tenant's admins (`webhook_endpoint_disabled`). Returns the endpoints' ids."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    with cross_tenant("sweep"):
        found = list(WebhookEndpoint.objects.unscoped().filter(is_active=True, failing_since__lte=cutoff)
                     .values_list("tenant_id", "pk"))
    disabled = []
    for tenant_id, endpoint_id in found:
        with tenant_scope(tenant_id) as tenant:
            if _endpoint_disable(tenant=tenant, endpoint_id=endpoint_id, cutoff=cutoff, now=now):
                disabled.append(endpoint_id)
    return disabled


@transaction.atomic
def _endpoint_disable(*, tenant, endpoint_id: int, cutoff: dt.datetime, now: dt.datetime) -> bool:
    endpoint = (WebhookEndpoint.objects.for_tenant(tenant).select_for_update()
                .filter(pk=endpoint_id, is_active=True, failing_since__lte=cutoff).first())
    if endpoint is None:
        return False  # fixed, disabled or deleted meanwhile
    days = settings.WEBHOOK_DISABLE_AFTER_DAYS
    reason = f"Every delivery failed for {days} days (since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC)."
    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.for_tenant(tenant).filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, gave_up_at=now, claimed_until=None, last_error="Endpoint disabled.")
    audit_record(tenant=tenant, actor=SYSTEM, action="webhook.disabled", obj=endpoint, metadata={"reason": reason})
    admin_ids = list(Membership.objects.for_tenant(tenant).filter(role__in=roles_for(WEBHOOKS_MANAGE), is_active=True)
                     .values_list("user_id", flat=True))
    # Routing's receiver writes each admin an in-app notification, emailed after commit (routing.notifications).
    webhook_endpoint_disabled.send(sender=WebhookEndpoint, tenant=tenant, endpoint=endpoint, admin_ids=admin_ids,
                                   reason=reason)
    return True

