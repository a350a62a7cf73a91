"""Scoring's subscribers: a new tenant gets its default model; on the lead core's events the Scoring
Agent re-scores what changed.

* `signals_processed`: the leads are re-scored in the same transaction (behind the Scoring Agent's
  off switch), so a signal is never marked processed without its score reflecting it.
* `lead_captured` (a merge) and `lead_updated` (an edit) that changed a field the scoring rules read:
  the lead is re-scored in a worker after commit. A new lead's first score is not here: the
  workspace's capture pipeline scores it and then routes it, in that order, in one task.
"""
from __future__ import annotations

from django.dispatch import receiver

from leadmgmt.tenancy.events import tenant_provisioned
from leadmgmt.tenancy.models import Agent, agent_enabled
from leads.events import lead_captured, lead_updated, signals_processed

from .engine import SCORING_FIELDS
from .models import ScoreCause
from .services import SCORING_AGENT, lead_score_enqueue, leads_score, scoring_default_model_create


@receiver(signals_processed, dispatch_uid="scoring.signals_processed_rescore")
def signals_processed_rescore(sender, *, tenant, lead_ids, **kwargs) -> None:
    if lead_ids and agent_enabled(tenant=tenant, agent=Agent.SCORING):
        leads_score(tenant=tenant, lead_ids=list(lead_ids), cause=ScoreCause.SIGNAL, actor=SCORING_AGENT)


@receiver(lead_captured, dispatch_uid="scoring.lead_captured_rescore")
def lead_captured_rescore(sender, *, tenant, lead, created, changed_fields, **kwargs) -> None:
    if not created and SCORING_FIELDS & set(changed_fields):
        lead_score_enqueue(tenant=tenant, lead_ids=[lead.pk], cause=ScoreCause.CAPTURE)


@receiver(lead_updated, dispatch_uid="scoring.lead_updated_rescore")
def lead_updated_rescore(sender, *, tenant, lead, changed_fields, **kwargs) -> None:
    if SCORING_FIELDS & set(changed_fields):
        lead_score_enqueue(tenant=tenant, lead_ids=[lead.pk], cause=ScoreCause.FIELD_EDIT)


@receiver(tenant_provisioned, dispatch_uid="scoring.tenant_provisioned_model")
def tenant_provisioned_model(sender, *, tenant, actor, **kwargs) -> None:
    """A new tenant's first, published scoring model (seed 002's table and bands)."""
    scoring_default_model_create(tenant=tenant, actor=actor)
