"""Celery tasks of the webhooks app: thin, re-runnable wrappers around the delivery services."""
from __future__ import annotations

import logging

from celery import shared_task

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant

from .services.delivery import (
    tenants_with_due_deliveries,
    webhook_deliveries_send,
    webhook_log_purge,
)
from .services.endpoints import webhook_endpoints_disable_failing

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def webhook_deliveries_send_task(*, tenant_id: int) -> int:
    """Send the tenant's due deliveries (enqueued after the commit that wrote them, and by the sweep)."""
    try:
        with tenant_scope(tenant_id) as tenant:
            return webhook_deliveries_send(tenant=tenant)
    except Tenant.DoesNotExist:
        log.warning("webhook_deliveries_send_task: tenant %s no longer exists", tenant_id)
        return 0


@shared_task(acks_late=True)
def webhook_deliveries_sweep_task() -> int:
    """Beat, every minute: disable endpoints failing for too long, then hand each tenant with due
    deliveries (retries, lost tasks) to a worker on the default queue (slow endpoints never hold beat's)."""
    webhook_endpoints_disable_failing()
    tenant_ids = tenants_with_due_deliveries()
    for tenant_id in tenant_ids:
        webhook_deliveries_send_task.delay(tenant_id=tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True)
def webhook_log_purge_task() -> int:
    """Beat, hourly: the delivery log keeps `WEBHOOK_LOG_RETENTION_DAYS` of finished deliveries."""
    return webhook_log_purge()
