"""Celery tasks of the leads app: thin, re-runnable wrappers around the signal services."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant

from .selectors import signals_unprocessed_by_tenant, tenants_with_attachable_signals
from .services.signals import PROCESS_CHUNK, signals_attach_pending, signals_process

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def signals_process_task(self, *, tenant_id: int, signal_ids: list[int]) -> int:
    """Process these signals of one tenant; returns how many this run processed (0 on a re-run)."""
    try:
        with tenant_scope(tenant_id) as tenant:
            return len(signals_process(tenant=tenant, signal_ids=signal_ids).signal_ids)
    except Tenant.DoesNotExist:
        log.warning("signals_process_task: tenant %s no longer exists", tenant_id)
        return 0


@shared_task(acks_late=True)
def signals_sweep_task() -> int:
    """Beat, every minute: attach pending signals whose lead has arrived, re-enqueue lost processing."""
    for tenant_id in tenants_with_attachable_signals():
        with tenant_scope(tenant_id) as tenant:
            signals_attach_pending(tenant=tenant)
    cutoff = timezone.now() - timedelta(seconds=settings.SIGNALS_SWEEP_AFTER_SECONDS)
    enqueued = 0
    for tenant_id, ids in signals_unprocessed_by_tenant(received_before=cutoff).items():
        for start in range(0, len(ids), PROCESS_CHUNK):
            signals_process_task.delay(tenant_id=tenant_id, signal_ids=ids[start:start + PROCESS_CHUNK])
        enqueued += len(ids)
    if enqueued:
        log.info("signals_sweep_task: re-enqueued %s unprocessed signals", enqueued)
    return enqueued


@shared_task(acks_late=True)
def idempotency_purge_task() -> int:
    """Beat, hourly: delete intake idempotency records past their 24-hour replay window."""
    from .services.intake import idempotency_records_purge

    return idempotency_records_purge()
