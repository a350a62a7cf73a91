"""Celery tasks of the workspace: the capture pipeline that chains the Scoring Agent and the Routing Agent."""
from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, Tenant, agent_enabled
from routing.models import Trigger
from routing.services.assign import lead_route_auto
from scoring.models import ScoreCause
from scoring.services import SCORING_AGENT, leads_score


# The name it had in leads/, so tasks enqueued before a deploy still find their worker.
@shared_task(name="leads.tasks.lead_captured_task", bind=True, acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=5)
def lead_captured_task(self, *, tenant_id: int, lead_id: str) -> str | None:
    """A new lead: the Scoring Agent scores it, then the Routing Agent routes it (each behind its own
    off switch, each its own transaction). Safe to run twice: scoring recomputes from the database
    and a lead already routed on capture is not routed again."""
    try:
        with tenant_scope(tenant_id) as tenant:
            if agent_enabled(tenant=tenant, agent=Agent.SCORING):
                leads_score(tenant=tenant, lead_ids=[lead_id], cause=ScoreCause.CAPTURE, actor=SCORING_AGENT)
            assignment = lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=Trigger.CAPTURE)
            return str(assignment.owner_id) if assignment is not None else None
    except Tenant.DoesNotExist:
        return None
