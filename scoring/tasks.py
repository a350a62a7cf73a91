"""Celery tasks of the Scoring Agent: thin, re-runnable wrappers around scoring services."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Agent, Tenant, agent_enabled

from .services import SCORING_AGENT, leads_score

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def leads_score_task(self, *, tenant_id: int, lead_ids: list[str], cause: str) -> int:
    """Re-score these leads (a signal arrived, a scoring field changed). Re-running is harmless:
    the score is recomputed from the database, so the same signal never counts twice."""
    try:
        with tenant_scope(tenant_id) as tenant:
            if not agent_enabled(tenant=tenant, agent=Agent.SCORING):
                return 0
            return leads_score(tenant=tenant, lead_ids=lead_ids, cause=cause, actor=SCORING_AGENT).updated
    except Tenant.DoesNotExist:
        return 0


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def leads_rescore_all_task(self, *, tenant_id: int, cause: str, actor_name: str = "Scoring Agent") -> int:
    """Re-score every lead of a tenant (after a model is published), set-based in one statement."""
    try:
        with tenant_scope(tenant_id) as tenant:
            actor = SCORING_AGENT if actor_name == SCORING_AGENT.name else Actor(kind="user", name=actor_name)
            run = leads_score(tenant=tenant, cause=cause, actor=actor)
            log.info("rescored tenant %s: %s leads updated", tenant_id, run.updated)
            return run.updated
    except Tenant.DoesNotExist:
        return 0


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def accounts_score_task(self, *, tenant_id: int) -> int:
    """Recompute every account score of a tenant from its leads' scores (idempotent: a re-run changes nothing)."""
    from .account_scores import accounts_score

    try:
        with tenant_scope(tenant_id) as tenant:
            return accounts_score(tenant=tenant)
    except Tenant.DoesNotExist:
        return 0


@shared_task(acks_late=True)
def score_events_dispatch_task(*, tenant_id: int) -> int:
    from .events import score_events_dispatch

    with tenant_scope(tenant_id) as tenant:
        return score_events_dispatch(tenant=tenant)


@shared_task(acks_late=True)
def scoring_decay_task() -> int:
    """Beat, daily: decay, inactivity penalty and cold archiving for every tenant whose agent is on."""
    from .services import leads_decay_and_archive

    archived = 0
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            if agent_enabled(tenant=tenant, agent=Agent.SCORING):
                archived += leads_decay_and_archive(tenant=tenant).archived
    return archived


@shared_task(acks_late=True)
def score_events_sweep_task() -> int:
    """Beat, every minute: dispatch scoring events whose on-commit dispatch was lost."""
    from .events import score_events_dispatch
    from .selectors import tenants_with_pending_score_events

    sent = 0
    for tenant in tenants_with_pending_score_events():
        with tenant_scope(tenant):
            sent += score_events_dispatch(tenant=tenant)
    return sent


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def predictive_train_task(self, *, tenant_id: int, job_id: int) -> str:
    """Train the tenant's learned model for this job (a job already done is left as it is), then re-score."""
    from .models import PredictiveModel
    from .predictive.services import predictive_train_run

    try:
        with tenant_scope(tenant_id) as tenant:
            job = PredictiveModel.objects.for_tenant(tenant).filter(pk=job_id).first()
            if job is None:
                return "missing"
            return predictive_train_run(job=job, actor=SCORING_AGENT).status
    except Tenant.DoesNotExist:
        return "missing"


@shared_task(acks_late=True)
def predictive_train_monthly_task() -> int:
    """Beat, monthly: train every active tenant's learned model again (refused quietly where history is short)."""
    from .predictive.services import predictive_train_request

    started = 0
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            if agent_enabled(tenant=tenant, agent=Agent.SCORING):
                _job, created = predictive_train_request(tenant=tenant, actor=SCORING_AGENT)
                started += int(created)
    return started
