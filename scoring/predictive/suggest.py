"""Suggest a draft from the learned model: a points model marketing ops review and publish as usual.

Every learned weight that a rule kind can express becomes a rule with learned points (a field value → `equals`,
a title level or department → `keywords` on the job title in an exclusive group, an employee band → `range` on
company size, a flag → `is_true`/`not_blank`, a signal type → a `signal` rule with a cap). Points are the
weights scaled so the possible totals span 0–100, with a baseline rule so no lead is clamped at 0. The MQL band
starts where the tenant's MQL capacity (the share of leads MQL or above today, or the share asked for) ends.
"""
from __future__ import annotations

import math

from django.db import connection, transaction

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.models import Tenant

from ..models import (
    Category,
    FeatureKind,
    ModelStatus,
    Operator,
    PredictiveFeature,
    PredictiveModel,
    ScoreBand,
    ScoringModel,
    ScoringRule,
)

TITLE_WORDS = {
    "c-level": ["ceo", "cto", "cfo", "coo", "cmo", "cio", "cro", "chief", "founder", "co-founder", "owner",
                "president"],
    "vp": ["vp", "svp", "evp", "vice president"],
    "director": ["director", "head"],
    "manager": ["manager", "lead", "supervisor"],
    "student": ["student", "intern", "trainee"],
}
DEPARTMENT_WORDS = {
    "marketing": ["marketing", "brand", "growth", "demand", "cmo"],
    "sales": ["sales", "account executive", "business development", "cro", "revenue"],
    "engineering / it": ["engineer", "engineering", "developer", "it", "cto", "cio", "technology", "devops", "data"],
    "finance": ["finance", "cfo", "accounting", "controller"],
    "people / hr": ["hr", "people", "talent", "recruiter", "recruiting"],
    "operations": ["operations", "coo", "ops"],
}
EMPLOYEE_BANDS = {"1-10": (None, 10), "11-50": (11, 50), "51-200": (51, 200), "201-1000": (201, 1000),
                  "1001-5000": (1001, 5000), "5000+": (5001, None)}
FIELD_KEYS = {"industry", "country", "source", "campaign", "utm_source", "utm_medium", "utm_campaign"}
FLAG_RULES = {"is_personal_email": ("is_personal_email", Operator.IS_TRUE),
              "marketing_consent": ("marketing_consent", Operator.IS_TRUE),
              "has_phone": ("phone", Operator.NOT_BLANK)}
SIGNAL_CAP_COUNT = 5  # a signal rule's cap: the points of this many signals
DEFAULT_MQL_SHARE = 0.2


def _candidates(features: list[PredictiveFeature]) -> list[dict]:
    """(group, rule fields, weight) of every weight a rule kind can express."""
    out = []
    for f in features:
        w = f.weight
        if f.kind == FeatureKind.CATEGORY:
            if f.key in FIELD_KEYS or f.key.startswith("attributes."):
                category = Category.FIRMOGRAPHIC if f.key in {"industry", "country"} else Category.DEMOGRAPHIC
                out.append({"group": f.key, "w": w, "rule": dict(name=f.label, category=category, field=f.key,
                                                                 operator=Operator.EQUALS, value=f.value)})
            elif f.key == "title_level" and f.value in TITLE_WORDS:
                out.append({"group": "title_level", "w": w, "order": list(TITLE_WORDS).index(f.value),
                            "rule": dict(name=f.label, category=Category.DEMOGRAPHIC, field="job_title",
                                         operator=Operator.KEYWORDS, value=TITLE_WORDS[f.value],
                                         exclusive_group="learned title level")})
            elif f.key == "department" and f.value in DEPARTMENT_WORDS:
                out.append({"group": "department", "w": w, "order": list(DEPARTMENT_WORDS).index(f.value),
                            "rule": dict(name=f.label, category=Category.DEMOGRAPHIC, field="job_title",
                                         operator=Operator.KEYWORDS, value=DEPARTMENT_WORDS[f.value],
                                         exclusive_group="learned department")})
            elif f.key == "employee_band" and f.value in EMPLOYEE_BANDS:
                low, high = EMPLOYEE_BANDS[f.value]
                out.append({"group": "employee_band", "w": w, "rule": dict(
                    name=f.label, category=Category.FIRMOGRAPHIC, field="company_size", operator=Operator.RANGE,
                    value={"min": low, "max": high})})
        elif f.kind == FeatureKind.FLAG and f.key in FLAG_RULES:
            field, operator = FLAG_RULES[f.key]
            out.append({"group": f.key, "w": w, "rule": dict(name=f.label, category=Category.DEMOGRAPHIC,
                                                             field=field, operator=operator, value=None)})
        elif f.kind == FeatureKind.SIGNAL and f.value == "recent":
            # A signal's first occurrence adds w·ln 2 in the model; up to the cap, each adds as much.
            out.append({"group": f"signal:{f.key}", "w": w * math.log(2), "signal": f.key,
                        "rule": dict(name=f.label, category=Category.ENGAGEMENT, operator=Operator.SIGNAL,
                                     signal_type=f.key, field="", value=None)})
    return out


def _range_per_group(candidates: list[dict]) -> tuple[float, float]:
    """The lowest and highest total in logit units (each group's worst and best, signals up to their cap)."""
    low = high = 0.0
    groups: dict[str, list[float]] = {}
    for c in candidates:
        span = c["w"] * (SIGNAL_CAP_COUNT if "signal" in c else 1)
        groups.setdefault(c["group"], []).append(span)
    for spans in groups.values():
        low += min(0.0, min(spans))
        high += max(0.0, max(spans))
    return low, high


def _draft_scores(draft: ScoringModel) -> list[int]:
    from django.utils import timezone

    from ..engine import compile_model, scored_rows_sql

    compiled = compile_model(draft)
    rows = scored_rows_sql(compiled, tenant_id=draft.tenant_id, now=timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SELECT r.score FROM ({rows}) r", compiled.params)
        return [r[0] for r in cursor.fetchall()]


def _mql_share(tenant: Tenant, published: ScoringModel | None) -> float:
    if published is None:
        return DEFAULT_MQL_SHARE
    auto = list(ScoreBand.objects.for_tenant(tenant).filter(model=published, auto_mql=True).values_list("key", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE band = ANY(%s)) FROM leads_lead WHERE tenant_id = %s "
                       "AND score IS NOT NULL", [auto, tenant.pk])
        total, mql = cursor.fetchone()
    return mql / total if total and mql else DEFAULT_MQL_SHARE


def _bands_rescale(bands: list[ScoreBand], threshold: int) -> None:
    """Move the first auto-MQL band's start to `threshold`, the others in proportion below and above it."""
    bands.sort(key=lambda b: b.min_score)
    pivot = next((i for i, b in enumerate(bands) if b.auto_mql), None)
    if pivot is None or pivot == 0:
        return
    old = bands[pivot].min_score
    mins = []
    for i, b in enumerate(bands):
        if i < pivot:
            mins.append(round(b.min_score * threshold / old) if old else 0)
        else:
            mins.append(threshold + round((b.min_score - old) * (100 - threshold) / max(1, 100 - old)))
    mins[0] = 0
    for i in range(1, len(mins)):
        mins[i] = max(mins[i], mins[i - 1] + 1)
    for i, b in enumerate(bands):
        b.min_score = mins[i]
        b.max_score = mins[i + 1] - 1 if i + 1 < len(bands) else 100


def predictive_draft_suggest(*, tenant: Tenant, actor: Actor, mql_share: float | None = None) -> ScoringModel:
    """A new draft ScoringModel whose rules carry the learned model's points and whose MQL band fits capacity."""
    from django.core.exceptions import ValidationError

    from ..services import scoring_model_draft_create

    learned = PredictiveModel.objects.for_tenant(tenant).filter(is_current=True).first()
    if learned is None:
        raise ValidationError({"detail": ["There is no learned model yet: train one first."]})
    features = list(PredictiveFeature.objects.for_tenant(tenant).filter(model=learned).order_by("position"))
    published = ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()
    share = mql_share if mql_share is not None else _mql_share(tenant, published)
    with transaction.atomic():
        draft = scoring_model_draft_create(tenant=tenant, actor=actor, based_on=published,
                                           name=f"Suggested from learned model v{learned.version}")
        ScoringRule.objects.for_tenant(tenant).filter(model=draft).delete()
        from leads.signal_catalog import signal_type_names

        known = signal_type_names(tenant=tenant)  # a signal rule names a type of the catalog or the tenant's own
        candidates = [c for c in _candidates(features) if "signal" not in c or c["signal"] in known]
        low, high = _range_per_group(candidates)
        k = 100.0 / (high - low) if high > low else 0.0
        rules, position = [], 0
        baseline = round(-low * k)
        if baseline > 0:
            position += 10
            rules.append(ScoringRule(tenant=tenant, model=draft, position=position, name="Baseline (learned model)",
                                     category=Category.DEMOGRAPHIC, field="email", operator=Operator.NOT_BLANK,
                                     points=baseline))
        candidates.sort(key=lambda c: (c["group"], c.get("order", 0), -abs(c["w"])))
        for c in candidates:
            points = round(c["w"] * k)
            if points == 0:
                continue
            position += 10
            extra = {"cap": abs(points) * SIGNAL_CAP_COUNT} if "signal" in c else {}
            fields = {**c["rule"], "name": c["rule"]["name"][:100]}
            rules.append(ScoringRule(tenant=tenant, model=draft, position=position, points=points, **fields, **extra))
        ScoringRule.objects.bulk_create(rules)
        scores = sorted(_draft_scores(draft))
        threshold = 60
        if scores:
            at = min(len(scores) - 1, max(0, int(round(len(scores) * (1 - share)))))
            threshold = min(95, max(5, int(scores[at])))
        bands = list(ScoreBand.objects.for_tenant(tenant).filter(model=draft))
        _bands_rescale(bands, threshold)
        ScoreBand.objects.bulk_update(bands, ["min_score", "max_score"])
        draft.notes = (f"Suggested from learned model v{learned.version} (held-out AUC {learned.metrics.get('auc')}): "
                       f"{len(rules)} rules with learned points ({k:.1f} points per unit of log-odds); MQL from "
                       f"{threshold} for an MQL share of {share:.0%}.")
        draft.save(update_fields=["notes"])
        audit_record(tenant=tenant, actor=actor, action="scoring_model.suggested", obj=draft,
                     metadata={"learned_version": learned.version, "rules": len(rules), "mql_threshold": threshold})
    draft.mql_threshold = threshold
    return draft
