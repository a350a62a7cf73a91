"""Celery tasks of the Routing Agent and the SLA Agent: thin, re-runnable wrappers around routing services."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, Tenant, agent_enabled

from .sla_tasks import *  # noqa: F401,F403  (SLA Agent tasks live there; autodiscovery imports this module)

log = logging.getLogger(__name__)
SWEEP_GRACE = timedelta(seconds=60)
SWEEP_WINDOW = timedelta(days=1)
SWEEP_BATCH = 500


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def lead_route_task(self, *, tenant_id: int, lead_id: str, trigger: str) -> int | None:
    """Route one lead as the Routing Agent (capture, band change). Safe to run twice: a lead routed
    on capture is not routed again, and the decision is taken with the lead row locked."""
    from .services.assign import lead_route_auto

    try:
        with tenant_scope(tenant_id) as tenant:
            assignment = lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=trigger)
            return assignment.pk if assignment is not None else None
    except Tenant.DoesNotExist:
        return None


@shared_task(acks_late=True)
def routing_sweep_task(*, now=None) -> int:
    """Beat, every minute: route leads captured more than a minute ago (and within the last day) that
    have no assignment at all: their routing task was lost (broker down, worker killed)."""
    from leads.models import Lead

    from .models import Assignment, RoutingRule, Trigger
    from .selectors import OPEN_STATUSES
    from .services.assign import lead_route_auto

    now = now or timezone.now()
    routed = 0
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            if not agent_enabled(tenant=tenant, agent=Agent.ROUTING) or not RoutingRule.objects.unscoped().filter(
                    tenant=tenant, is_active=True).exists():
                continue
            lost = (Lead.objects.unscoped()
                    .filter(tenant=tenant, created_at__lt=now - SWEEP_GRACE, created_at__gte=now - SWEEP_WINDOW,
                            owner__isnull=True, status__in=OPEN_STATUSES)
                    .exclude(Exists(Assignment.objects.unscoped().filter(tenant=tenant, lead_id=OuterRef("pk"))))
                    .order_by("created_at").values_list("id", flat=True)[:SWEEP_BATCH])
            for lead_id in list(lost):
                if lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=Trigger.CAPTURE) is not None:
                    routed += 1
    if routed:
        log.info("routing sweep: routed %s leads whose task was lost", routed)
    return routed
