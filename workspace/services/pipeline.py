"""The capture pipeline: new leads are scored and then routed by the worker in batches.

Capture marks each new lead pending in its own INSERT (`Lead.pipeline_pending_since`, the outbox) and,
after commit, enqueues one task per tenant and transaction (a batch of 1,000 leads is one task). The
worker claims up to `CAPTURE_PIPELINE_BATCH` pending leads with `FOR UPDATE SKIP LOCKED` (two workers never
claim the same lead), scores them with the set-based engine in one statement, routes them with the rule
set compiled once and records their possible duplicates (same phone, or same name at the same account:
`leads.services.duplicates`), their pending mark cleared by the claim itself, all in one transaction: a worker
killed half-way loses nothing (the transaction rolls back, the leads stay pending) and nothing is done twice
(the mark is cleared with the work it stands for). The sweep hands leads pending for longer than
`CAPTURE_PIPELINE_SWEEP_AFTER_SECONDS` to a worker again, so a lost task costs one sweep interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, Tenant, agent_enabled
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import WebhookItem, webhook_emit_bulk, webhook_subscribed
from leads.models import Lead
from leads.services.duplicates import duplicate_pairs_detect
from leads.webhooks import leads_webhook_data
from routing.services.assign import leads_route_captured
from scoring.models import ScoreCause
from scoring.services import SCORING_AGENT, leads_score

# The claim clears the pending mark of the leads it takes (their ids in pending order): in the batch's
# transaction, so a rollback puts the mark back, and one UPDATE of the leads fewer than clearing it at the end.
_CLAIM_SQL = (
    f"WITH claimed AS (SELECT id, pipeline_pending_since AS since FROM {Lead._meta.db_table} "  # noqa: S608
    "WHERE tenant_id = %(tenant)s AND pipeline_pending_since IS NOT NULL "
    "ORDER BY pipeline_pending_since, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    f"cleared AS (UPDATE {Lead._meta.db_table} l SET pipeline_pending_since = NULL FROM claimed c "
    "WHERE l.tenant_id = %(tenant)s AND l.id = c.id) "
    "SELECT id FROM claimed ORDER BY since, id"
)


@dataclass(frozen=True)
class PipelineRun:
    claimed: int = 0
    routed: int = 0
    batches: int = 0


def captured_leads_process(*, tenant: Tenant, limit: int | None = None, now: datetime | None = None) -> PipelineRun:
    """Claim, score and route one batch of the tenant's pending new leads (one transaction)."""
    limit = limit or settings.CAPTURE_PIPELINE_BATCH
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, {"tenant": tenant.pk, "limit": limit})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return PipelineRun()
        if agent_enabled(tenant=tenant, agent=Agent.SCORING):
            leads_score(tenant=tenant, lead_ids=ids, cause=ScoreCause.CAPTURE, actor=SCORING_AGENT, now=now)
        _webhooks_lead_created(tenant=tenant, lead_ids=ids, now=now)
        assignments = leads_route_captured(tenant=tenant, lead_ids=ids, now=now)
        duplicate_pairs_detect(tenant=tenant, lead_ids=ids, now=now)
    return PipelineRun(claimed=len(ids), routed=len(assignments), batches=1)


def _webhooks_lead_created(*, tenant: Tenant, lead_ids: list, now: datetime | None) -> None:
    """`lead.created` for the batch (scored, before its assignments' `lead.assigned`): one read and one
    multi-row insert, only when an endpoint of the tenant subscribes. The lead's id is the event's key, so
    a batch that runs again after a rollback never sends a lead's creation twice."""
    if not webhook_subscribed(tenant=tenant, event_type=WebhookEventType.LEAD_CREATED):
        return
    data = leads_webhook_data(tenant=tenant, lead_ids=lead_ids)
    webhook_emit_bulk(tenant=tenant, event_type=WebhookEventType.LEAD_CREATED, now=now, items=[
        WebhookItem(data={"lead": data[lead_id]}, lead_id=lead_id, key=str(lead_id))
        for lead_id in lead_ids if lead_id in data])


def captured_leads_drain(*, tenant: Tenant, max_batches: int = 50) -> PipelineRun:
    """Process batches until no pending lead is left to claim (or `max_batches`, so one tenant's flood
    cannot hold a worker forever: the sweep comes back for the rest)."""
    claimed = routed = batches = 0
    for _ in range(max_batches):
        run = captured_leads_process(tenant=tenant)
        claimed, routed, batches = claimed + run.claimed, routed + run.routed, batches + run.batches
        if run.claimed < settings.CAPTURE_PIPELINE_BATCH:
            break
    return PipelineRun(claimed=claimed, routed=routed, batches=batches)


def tenants_with_stalled_leads(*, now: datetime | None = None) -> list[int]:
    """Ids of the active tenants with a lead pending for longer than the sweep's grace period."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CAPTURE_PIPELINE_SWEEP_AFTER_SECONDS)
    stalled = []
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            if Lead.objects.for_tenant(tenant).filter(pipeline_pending_since__lt=cutoff).exists():
                stalled.append(tenant.pk)
    return stalled
