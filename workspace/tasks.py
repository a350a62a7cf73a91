"""Celery tasks of the workspace: the capture pipeline that chains the Scoring Agent and the Routing Agent."""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError
from redis.exceptions import RedisError

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
    _queued_clear(tenant_id)  # started: captures from now on enqueue a task again (this one may miss them)
    try:
        with tenant_scope(tenant_id) as tenant:
            run = captured_leads_drain(tenant=tenant)
            if lead_id and not run.claimed:
                _lead_not_pending(tenant=tenant, lead_id=lead_id)
            return run.claimed
    except Tenant.DoesNotExist:
        return 0


def _lead_not_pending(*, tenant: Tenant, lead_id: str) -> None:
    """A message from before the batch pipeline names its lead, which was never marked pending: score it if
    it has no score yet and route it if it was never routed (both no-ops for a lead the pipeline did)."""
    scored = (Lead.objects.for_tenant(tenant).filter(pk=lead_id, pipeline_pending_since__isnull=True)
              .values_list("scored_at", flat=True))
    if not scored.exists():
        return
    if scored.first() is None and agent_enabled(tenant=tenant, agent=Agent.SCORING):
        leads_score(tenant=tenant, lead_ids=[lead_id], cause=ScoreCause.CAPTURE, actor=SCORING_AGENT)
    lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=Trigger.CAPTURE)


def _queued_key(tenant_id: int) -> str:
    return f"pipeline:queued:{tenant_id}"


def _queued_clear(tenant_id: int) -> None:
    try:
        cache.delete(_queued_key(tenant_id))
    except RedisError:
        pass  # the flag expires on its own


def lead_captured_enqueue(*, tenant_id: int) -> bool:
    """Hand the tenant's new leads to the pipeline: enqueue `lead_captured_task` unless one is already
    waiting in the queue (a flag in Redis, set here, cleared when the task starts, expiring after
    CAPTURE_PIPELINE_QUEUED_SECONDS). A burst of 100 captures a second is a few tasks, not 100 a second,
    and each capture pays one Redis SET NX instead of a Celery publish. Returns whether it enqueued.

    Why nothing is missed: this runs after the capture committed, so when the flag is found set, the task
    that will clear it has not started yet, and its claim (after clearing) sees the committed lead."""
    try:
        if not cache.add(_queued_key(tenant_id), 1, settings.CAPTURE_PIPELINE_QUEUED_SECONDS):
            return False
    except RedisError:
        pass  # no flag to go by: enqueue (the publish may fail too; the sweep is the backstop)
    lead_captured_task.delay(tenant_id=tenant_id)
    return True


@shared_task(acks_late=True)
def capture_pipeline_sweep_task() -> int:
    """Beat, every 10 s: hand the tenants whose new leads have waited too long (their task was lost to a
    killed worker or a Redis restart) to the pipeline again. Returns how many tenants it enqueued."""
    stalled = tenants_with_stalled_leads()
    for tenant_id in stalled:
        lead_captured_task.delay(tenant_id=tenant_id)  # not lead_captured_enqueue: a lost task may hold the flag
    if stalled:
        log.warning("capture pipeline sweep: new leads waiting too long in %s tenant(s), re-enqueued", len(stalled))
    return len(stalled)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def import_run_task(self, *, tenant_id: int, job_id: int) -> str:
    """Run a CSV import (`import_run`): safe to run twice (a finished import does nothing, a killed one resumes
    after its last committed chunk). A database outage is retried; any other error stops the import as failed,
    with its message, and the run endpoint may start it again."""
    from .services.imports import import_failed, import_run

    with tenant_scope(tenant_id) as tenant:
        try:
            return import_run(tenant=tenant, job_id=job_id).state
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("import %s failed", job_id)
            import_failed(tenant=tenant, job_id=job_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def import_preview_task(self, *, tenant_id: int, job_id: int) -> str:
    """The dry run of a CSV import in a worker (`import_preview`, started by the import pages): safe to run
    twice (a job no longer previewing is left alone). Any error but a database outage puts the import back to
    `mapped` with its message."""
    from .models import ImportJob, ImportState
    from .services.imports import ImportConflict, import_preview, import_preview_failed

    with tenant_scope(tenant_id) as tenant:
        job = ImportJob.objects.for_tenant(tenant).defer("content").filter(pk=job_id).first()
        if job is None or job.state != ImportState.PREVIEWING:
            return job.state if job else "gone"
        try:
            return import_preview(job=job).state
        except ImportConflict as exc:  # the mapping changed or the run started meanwhile: that step wins
            log.info("import %s dry run dropped: %s", job_id, exc)
            return "dropped"
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("import %s dry run failed", job_id)
            import_preview_failed(tenant=tenant, job_id=job_id, error=f"{type(exc).__name__}: {exc}")
            return "failed"


@shared_task(acks_late=True)
def imports_sweep_task() -> int:
    """Beat, every minute: running CSV imports whose task was lost go to a worker again (they resume after their
    last committed chunk), and so do dry runs in a worker whose task was lost. Returns how many it enqueued."""
    from .services.imports import imports_stalled, previews_stalled

    stalled = imports_stalled()
    for tenant_id, job_id in stalled:
        import_run_task.delay(tenant_id=tenant_id, job_id=job_id)
    previews = previews_stalled()
    for tenant_id, job_id in previews:
        import_preview_task.delay(tenant_id=tenant_id, job_id=job_id)
    if stalled or previews:
        log.warning("imports sweep: %s running import(s) and %s dry run(s) without progress, re-enqueued",
                    len(stalled), len(previews))
    return len(stalled) + len(previews)
