"""Reads of scoring: rule labels for explanations, a lead's explained score, score history."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import (
    ENGAGEMENT_CATEGORIES,
    FIT_CATEGORIES,
    Category,
    ModelStatus,
    ScoreChange,
    ScoringModel,
    ScoringRule,
)

# Published and retired versions never change, so their labels can be kept for the process's life.
_IMMUTABLE_LABELS: dict[int, dict[str, tuple[str, str]]] = {}


def rule_labels(*, tenant, model_ids) -> dict[int, dict[str, tuple[str, str]]]:
    """{model id: {rule key: (rule name, category)}} of the tenant's models, in at most two queries."""
    wanted = {int(m) for m in model_ids if m is not None}
    out = {m: _IMMUTABLE_LABELS[m] for m in wanted if m in _IMMUTABLE_LABELS}
    missing = wanted - set(out)
    if missing:
        immutable = set(ScoringModel.objects.for_tenant(tenant).filter(pk__in=missing)
                        .exclude(status=ModelStatus.DRAFT).values_list("pk", flat=True))
        fetched: dict[int, dict[str, tuple[str, str]]] = {m: {} for m in missing}
        for model_id, key, name, category in (ScoringRule.objects.for_tenant(tenant).filter(model_id__in=missing)
                                              .values_list("model_id", "key", "name", "category")):
            fetched[model_id][key] = (name, category)
        for model_id, labels in fetched.items():
            if model_id in immutable:
                _IMMUTABLE_LABELS[model_id] = labels
        out.update(fetched)
    return out


def score_explain(*, lead, labels: dict[str, tuple[str, str]]) -> dict | None:
    """The lead's score as named lines per rule: the score is the clamped sum of the lines' points."""
    if lead.score is None or lead.score_breakdown is None:
        return None
    lines = []
    categories = {c: 0 for c in Category.values}
    for key, points in sorted(lead.score_breakdown.items(), key=lambda kv: (-abs(kv[1]), kv[0])):
        name, category = labels.get(str(key), (f"Rule {key}", ""))
        lines.append({"rule_key": key, "rule": name, "category": category, "points": points})
        if category in categories:
            categories[category] += points
    total = sum(line["points"] for line in lines)
    return {
        "score": lead.score,
        "raw_total": total,
        "fit": sum(categories[c] for c in FIT_CATEGORIES),
        "engagement": sum(categories[c] for c in ENGAGEMENT_CATEGORIES),
        "categories": categories,
        "lines": lines,
        "lead_class": lead.lead_class,
        "lead_class_reason": lead.lead_class_reason,
        "model_id": lead.scoring_model_id,
    }


def score_history(*, lead) -> QuerySet[ScoreChange]:
    return ScoreChange.objects.for_tenant(lead.tenant_id).filter(lead=lead).select_related("model")


def tenants_with_pending_score_events() -> list:
    """Tenants with a score event not yet dispatched (their on-commit dispatch was lost), across tenants."""
    from leadmgmt.tenancy.cross_tenant import cross_tenant
    from leadmgmt.tenancy.models import Tenant

    from .models import ScoreEvent

    with cross_tenant("sweep"):
        pending = ScoreEvent.objects.unscoped().filter(dispatched_at__isnull=True).values("tenant_id")
        return list(Tenant.objects.filter(pk__in=pending).order_by("pk"))
