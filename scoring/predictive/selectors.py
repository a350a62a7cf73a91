"""Reads of the learned model: the tenant's current model, its features and the last training job, as one dict
(the API's `GET /api/v1/scoring/predictive/` and `manage.py scoring_train --json` print the same)."""
from __future__ import annotations

from leadmgmt.tenancy.models import Tenant

from ..models import ModelStatus, PredictiveFeature, PredictiveModel, ScoringModel


def _iso(value):
    return value.isoformat() if value is not None else None


def predictive_job_dict(job: PredictiveModel | None) -> dict | None:
    if job is None:
        return None
    return {"id": job.pk, "version": job.version, "status": job.status, "message": job.message,
            "requested_at": _iso(job.requested_at), "trained_at": _iso(job.trained_at),
            "closed_count": job.closed_count, "won_count": job.won_count}


def predictive_status(*, tenant: Tenant) -> dict:
    """Status, current version, metrics, trained_at, training size, features with their weights, the last job."""
    jobs = PredictiveModel.objects.for_tenant(tenant)
    current = jobs.filter(is_current=True).first()
    last = jobs.order_by("-version").first()
    settings_model = ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()
    features = []
    if current is not None:
        features = [{"kind": f.kind, "key": f.key, "value": f.value, "label": f.label, "weight": round(f.weight, 6)}
                    for f in sorted(PredictiveFeature.objects.for_tenant(tenant).filter(model=current),
                                    key=lambda f: (-abs(f.weight), f.position))]
    if current is not None:
        status = "ready"
    else:
        status = last.status if last is not None else "none"
    return {
        "status": status,
        "current_version": current.version if current else None,
        "trained_at": _iso(current.trained_at) if current else None,
        "training_size": {"closed": current.closed_count, "won": current.won_count} if current else None,
        "metrics": current.metrics if current else {},
        "calibration": {"a": current.platt_a, "b": current.platt_b} if current else None,
        "intercept": current.intercept if current else None,
        "features": features,
        "blend": settings_model.predictive_blend if settings_model else 0,
        "minimums": {"closed": settings_model.predictive_min_closed if settings_model else 200,
                     "won": settings_model.predictive_min_won if settings_model else 30},
        "last_job": predictive_job_dict(last),
    }
