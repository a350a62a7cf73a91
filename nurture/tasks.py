"""Celery tasks of nurture: thin, re-runnable wrappers around the services."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, Tenant, agent_enabled

log = logging.getLogger(__name__)


@shared_task(acks_late=False, ignore_result=True)
def nurture_agent_task() -> int:
    """The Nurture Agent's minute (Celery beat): enrol, exit, pause, send due steps. Not acks_late: a run
    that dies is not replayed by the broker; the next minute's run picks up where it stopped."""
    from .services.sending import nurture_agent_run

    runs = nurture_agent_run()
    return sum(run.sent for run in runs)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def nurture_readiness_task(self, *, tenant_id: int, lead_id: str) -> bool:
    """A nurtured lead's score changed: if it is now ready it leaves its sequence and is routed. Idempotent."""
    from .services.enrollment import lead_readiness_check

    try:
        with tenant_scope(tenant_id) as tenant:
            if not agent_enabled(tenant=tenant, agent=Agent.NURTURE):
                return False
            return lead_readiness_check(tenant=tenant, lead_id=lead_id)
    except Tenant.DoesNotExist:
        log.warning("nurture_readiness_task: tenant %s no longer exists", tenant_id)
        return False
