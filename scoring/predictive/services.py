"""Writes of the learned model: ask for a training (one at a time per tenant), run it, store it, re-score."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.models import Tenant

from ..models import ModelStatus, PredictiveModel, PredictiveStatus, ScoreCause, ScoringModel
from .training import TrainingRefused, features_rows, model_train, refusal_message

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(hours=2)  # a training still "training" after this lost its worker


def _settings_model(tenant: Tenant) -> ScoringModel | None:
    return ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()


def predictive_history_check(*, tenant: Tenant) -> TrainingRefused | None:
    """Why training would be refused now (too few closed or won leads), or None."""
    settings_model = _settings_model(tenant)
    min_closed = settings_model.predictive_min_closed if settings_model else 200
    min_won = settings_model.predictive_min_won if settings_model else 30
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE result = 'won') FROM leads_outcome "
                       "WHERE tenant_id = %s", [tenant.pk])
        closed, won = cursor.fetchone()
    message = refusal_message(closed=closed, won=won, min_closed=min_closed, min_won=min_won)
    if message is None:
        return None
    return TrainingRefused(message, closed=closed, won=won, needed_closed=max(0, min_closed - closed),
                           needed_won=max(0, min_won - won))


def predictive_train_request(*, tenant: Tenant, actor: Actor, enqueue: bool = True) -> tuple[PredictiveModel, bool]:
    """(the training job, created): a new job, or the one already running (asking twice trains once)."""
    with transaction.atomic():
        running = PredictiveModel.objects.for_tenant(tenant).filter(status=PredictiveStatus.TRAINING).first()
        if running is not None and running.requested_at < timezone.now() - STALE_AFTER:
            running.status, running.message = PredictiveStatus.FAILED, "The training's worker was lost; train again."
            running.save(update_fields=["status", "message"])
            running = None
        if running is not None:
            return running, False
        version = (PredictiveModel.objects.for_tenant(tenant).aggregate(v=Max("version"))["v"] or 0) + 1
        refusal = predictive_history_check(tenant=tenant)
        if refusal is not None:  # refused at once, with the numbers: no worker needed to say so
            job = PredictiveModel.objects.create(
                tenant=tenant, version=version, requested_by=actor.user, status=PredictiveStatus.REFUSED,
                message=str(refusal), closed_count=refusal.closed, won_count=refusal.won,
                metrics={"needed_closed": refusal.needed_closed, "needed_won": refusal.needed_won})
            audit_record(tenant=tenant, actor=actor, action="predictive_model.refused", obj=job,
                         metadata={"closed": refusal.closed, "won": refusal.won})
            return job, True
        try:
            with transaction.atomic():
                job = PredictiveModel.objects.create(tenant=tenant, version=version, requested_by=actor.user)
        except IntegrityError:  # another request created it in the meantime
            return PredictiveModel.objects.for_tenant(tenant).filter(status=PredictiveStatus.TRAINING).first() \
                or PredictiveModel.objects.for_tenant(tenant).order_by("-version").first(), False
        audit_record(tenant=tenant, actor=actor, action="predictive_model.train_requested", obj=job,
                     metadata={"version": version})
        if enqueue:
            from ..tasks import predictive_train_task

            transaction.on_commit(lambda: predictive_train_task.delay(tenant_id=tenant.pk, job_id=job.pk))
    return job, True


def predictive_train_run(*, job: PredictiveModel, actor: Actor, rescore: bool = True) -> PredictiveModel:
    """Train the job's model from the tenant's closed leads, make it current, re-score every lead with it.

    Re-runnable: a job no longer `training` is left as it is."""
    tenant = job.tenant
    settings_model = _settings_model(tenant)
    min_closed = settings_model.predictive_min_closed if settings_model else 200
    min_won = settings_model.predictive_min_won if settings_model else 30
    if not PredictiveModel.objects.for_tenant(tenant).filter(pk=job.pk, status=PredictiveStatus.TRAINING).exists():
        job.refresh_from_db()
        return job
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")
            trained = model_train(cursor, tenant_id=tenant.pk, min_closed=min_closed, min_won=min_won)
    except TrainingRefused as refused:
        with transaction.atomic():
            job.status, job.message = PredictiveStatus.REFUSED, str(refused)
            job.closed_count, job.won_count = refused.closed, refused.won
            job.metrics = {"needed_closed": refused.needed_closed, "needed_won": refused.needed_won}
            job.save(update_fields=["status", "message", "closed_count", "won_count", "metrics"])
            audit_record(tenant=tenant, actor=actor, action="predictive_model.refused", obj=job,
                         metadata={"closed": refused.closed, "won": refused.won})
        return job
    except Exception as exc:
        log.exception("training the learned model of tenant %s failed", tenant.pk)
        with transaction.atomic():
            job.status, job.message = PredictiveStatus.FAILED, f"Training failed: {exc}"[:2000]
            job.save(update_fields=["status", "message"])
        return job
    with transaction.atomic():
        locked = PredictiveModel.objects.for_tenant(tenant).select_for_update().filter(
            pk=job.pk, status=PredictiveStatus.TRAINING).first()
        if locked is None:
            job.refresh_from_db()
            return job
        job = locked
        from ..models import PredictiveFeature

        PredictiveFeature.objects.bulk_create(features_rows(trained=trained, model=job))
        PredictiveModel.objects.for_tenant(tenant).filter(is_current=True).update(is_current=False)
        job.status, job.is_current, job.trained_at = PredictiveStatus.READY, True, timezone.now()
        job.closed_count, job.won_count, job.metrics = trained.closed, trained.won, trained.metrics
        job.intercept = float(trained.estimator.intercept_[0])
        job.platt_a, job.platt_b = trained.platt_a, trained.platt_b
        job.message = (f"Trained on {trained.closed} closed leads ({trained.won} won) with "
                       f"{trained.spec.width()} features.")
        job.save(update_fields=["status", "is_current", "trained_at", "closed_count", "won_count", "metrics",
                                "intercept", "platt_a", "platt_b", "message"])
        # Every version that may still score names it (a draft published later keeps it).
        ScoringModel.objects.for_tenant(tenant).exclude(status=ModelStatus.RETIRED).update(predictive_model=job)
        audit_record(tenant=tenant, actor=actor, action="predictive_model.trained", obj=job,
                     metadata={"version": job.version, "closed": trained.closed, "won": trained.won,
                               "metrics": trained.metrics})
    if rescore:
        from ..services import leads_score

        leads_score(tenant=tenant, cause=ScoreCause.PREDICTIVE, actor=actor)
    return job


def predictive_train(*, tenant: Tenant, actor: Actor, rescore: bool = True) -> PredictiveModel:
    """Train now, in this process (the command): request a job and run it."""
    job, _created = predictive_train_request(tenant=tenant, actor=actor, enqueue=False)
    return predictive_train_run(job=job, actor=actor, rescore=rescore)
