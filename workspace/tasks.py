"""Celery tasks of the workspace: the capture pipeline that chains the Scoring Agent and the Routing Agent."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, Tenant, agent_enabled
from leads.models import Lead
from routing.models import Trigger
from routing.services.assign import lead_route_auto
from scoring.models import ScoreCause
from scoring.services import SCORING_AGENT, leads_score

from .services.pipeline import captured_leads_drain, tenants_with_stalled_leads

log = logging.getLogger(__name__)


# The name it had in leads/, so tasks enqueued before a deploy still find their worker.
@shared_task(name="leads.tasks.lead_captured_task", bind=True, acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=5)
def lead_captured_task(self, *, tenant_id: int, lead_id: str | None = None) -> int:
    """New leads of a tenant: the pipeline claims, scores and routes every pending one in batches
    (`captured_leads_drain`); returns how many it claimed. Safe to run twice and to run side by side: a
    lead is claimed by one transaction, and its pending mark is cleared with its score and owner.
    `lead_id` (messages enqueued before the batch pipeline) is processed on its own when it is not pending."""
    try:
        with tenant_scope(tenant_id) as tenant:
            run = captured_leads_drain(tenant=tenant)
            if lead_id and not run.claimed and not Lead.objects.for_tenant(tenant).filter(
                    pk=lead_id, pipeline_pending_since__isnull=False).exists():
                _lead_score_and_route(tenant=tenant, lead_id=lead_id)
            return run.claimed
    except Tenant.DoesNotExist:
        return 0


def _lead_score_and_route(*, tenant: Tenant, lead_id: str) -> None:
    if agent_enabled(tenant=tenant, agent=Agent.SCORING):
        leads_score(tenant=tenant, lead_ids=[lead_id], cause=ScoreCause.CAPTURE, actor=SCORING_AGENT)
    lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=Trigger.CAPTURE)


@shared_task(acks_late=True)
def capture_pipeline_sweep_task() -> int:
    """Beat, every 10 s: hand the tenants whose new leads have waited too long (their task was lost to a
    killed worker or a Redis restart) to the pipeline again. Returns how many tenants it enqueued."""
    stalled = tenants_with_stalled_leads()
    for tenant_id in stalled:
        lead_captured_task.delay(tenant_id=tenant_id)
    if stalled:
        log.warning("capture pipeline sweep: new leads waiting too long in %s tenant(s), re-enqueued", len(stalled))
    return len(stalled)
