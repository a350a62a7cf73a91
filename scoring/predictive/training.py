"""Training a tenant's learned model: closed leads → calibrated logistic regression → weights stored as data.

scikit-learn's LogisticRegression (L2, balanced classes) over the features of `features.py`, calibrated by Platt
scaling on out-of-fold decision values. The held-out metrics come from a time-ordered split (fit on the older
80 % of the closed leads by close date, measure on the newest 20 %); the stored model is then refitted on all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ..models import FeatureKind, PredictiveFeature, PredictiveModel
from .features import FeatureSpec, Group, design_matrix, scale_fit, spec_discover, training_rows_sql

TEST_SHARE = 0.2
RAW_OFFSET = 4  # id, won, closed_at, points score, then one raw value per group


class TrainingRefused(Exception):
    """Too little closed history: the message says how much more is needed."""

    def __init__(self, message: str, *, closed: int, won: int, needed_closed: int, needed_won: int):
        super().__init__(message)
        self.closed, self.won, self.needed_closed, self.needed_won = closed, won, needed_closed, needed_won


def refusal_message(*, closed: int, won: int, min_closed: int, min_won: int) -> str | None:
    more_closed, more_won = max(0, min_closed - closed), max(0, min_won - won)
    if not more_closed and not more_won:
        return None
    needs = []
    if more_closed:
        needs.append(f"{more_closed} more closed lead{'s' if more_closed != 1 else ''}")
    if more_won:
        needs.append(f"{more_won} more won lead{'s' if more_won != 1 else ''}")
    return (f"Not enough closed history to learn from: {closed} closed leads ({won} won); training needs at "
            f"least {min_closed} closed and {min_won} won. Record {' and '.join(needs)} (outcomes) and train again.")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean gap between predicted and observed rates per decile."""
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if chunk.size:
            total += chunk.size * abs(float(p[chunk].mean()) - float(y[chunk].mean()))
    return total / max(1, len(y))


def _estimator() -> LogisticRegression:
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)


def _platt(decision: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(decision.reshape(-1, 1), y)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _fit_calibrated(X: np.ndarray, y: np.ndarray):
    """(fitted estimator, platt a, platt b): Platt scaling on 5-fold out-of-fold decision values."""
    folds = max(2, min(5, int(y.sum()), int((1 - y).sum())))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    decision = cross_val_predict(_estimator(), X, y, cv=cv, method="decision_function")
    a, b = _platt(decision, y)
    estimator = _estimator().fit(X, y)
    return estimator, a, b


@dataclass
class Trained:
    spec: FeatureSpec
    estimator: LogisticRegression
    platt_a: float
    platt_b: float
    metrics: dict
    closed: int
    won: int


def model_train(cursor, *, tenant_id: int, min_closed: int, min_won: int) -> Trained:
    """Fit the tenant's learned model from its closed leads (raises TrainingRefused below the minimums)."""
    cursor.execute("SELECT count(*), count(*) FILTER (WHERE result = 'won') FROM leads_outcome "
                   "WHERE tenant_id = %(tenant)s", {"tenant": tenant_id})
    closed, won = cursor.fetchone()
    message = refusal_message(closed=closed, won=won, min_closed=min_closed, min_won=min_won)
    if message or won == closed:
        raise TrainingRefused(message or "Every closed lead was won: nothing to tell buyers apart from the rest.",
                              closed=closed, won=won, needed_closed=max(0, min_closed - closed),
                              needed_won=max(0, min_won - won))
    spec = spec_discover(cursor, tenant_id=tenant_id, closed=closed)
    cursor.execute(training_rows_sql(spec), {"tenant": tenant_id})
    rows = cursor.fetchall()
    y = np.array([1 if r[1] else 0 for r in rows])
    split = int(round(len(rows) * (1 - TEST_SHARE)))
    # Held out: the newest 20 % by close date, scaled by the older 80 % only.
    scale_fit(spec, rows[:split], RAW_OFFSET)
    X_old, X_new = design_matrix(spec, rows[:split], RAW_OFFSET), design_matrix(spec, rows[split:], RAW_OFFSET)
    y_old, y_new = y[:split], y[split:]
    metrics: dict = {"test_size": int(len(y_new)), "test_won": int(y_new.sum()), "train_size": int(len(y_old))}
    if 0 < y_old.sum() < len(y_old) and 0 < y_new.sum() < len(y_new):
        est, a, b = _fit_calibrated(X_old, y_old)
        p = sigmoid(a * est.decision_function(X_new) + b)
        points = np.array([float(r[3]) if r[3] is not None else 0.0 for r in rows[split:]])
        metrics.update({
            "auc": round(float(roc_auc_score(y_new, p)), 4),
            "log_loss": round(float(log_loss(y_new, p, labels=[0, 1])), 4),
            "brier": round(float(brier_score_loss(y_new, p)), 4),
            "calibration_error": round(calibration_error(y_new, p), 4),
            "points_auc": round(float(roc_auc_score(y_new, points)), 4),
            "base_rate": round(float(y_new.mean()), 4),
        })
    # The stored model: refitted on every closed lead.
    scale_fit(spec, rows, RAW_OFFSET)
    X = design_matrix(spec, rows, RAW_OFFSET)
    estimator, a, b = _fit_calibrated(X, y)
    return Trained(spec=spec, estimator=estimator, platt_a=a, platt_b=b, metrics=metrics, closed=closed, won=won)


def features_rows(*, trained: Trained, model: PredictiveModel) -> list[PredictiveFeature]:
    """The weights as rows, in design-matrix order."""
    weights = trained.estimator.coef_[0]
    out, col = [], 0
    for g in trained.spec.groups:
        common = {"tenant_id": model.tenant_id, "model": model, "kind": g.kind, "key": g.key}
        if g.kind == FeatureKind.CATEGORY:
            for value, label in zip(g.values, g.value_labels, strict=True):
                out.append(PredictiveFeature(position=col, value=value[:200], weight=float(weights[col]),
                                             label=label[:300], **common))
                col += 1
            continue
        value = trained.spec.signal_types[g.signal_index][1] if g.kind == FeatureKind.SIGNAL else ""
        out.append(PredictiveFeature(position=col, value=value, weight=float(weights[col]), mean=g.mean,
                                     scale=g.scale, label=g.label[:300], **common))
        col += 1
    return out


def spec_from_features(features: list[PredictiveFeature]) -> tuple[FeatureSpec, list[float]]:
    """The stored rows back into groups (and the weights in design-matrix order)."""
    groups: list[Group] = []
    signal_types: list[tuple[str, str]] = []
    weights: list[float] = []
    for f in sorted(features, key=lambda f: f.position):
        weights.append(f.weight)
        if f.kind == FeatureKind.CATEGORY:
            last = groups[-1] if groups else None
            if last is None or last.kind != FeatureKind.CATEGORY or last.key != f.key:
                last = Group(kind=f.kind, key=f.key, label=f.label.split(":", 1)[0])
                groups.append(last)
            last.values.append(f.value)
            last.value_labels.append(f.label)
        elif f.kind == FeatureKind.SIGNAL:
            groups.append(Group(kind=f.kind, key=f.key, label=f.label, signal_index=len(signal_types)))
            signal_types.append((f.key, f.value))
        else:
            groups.append(Group(kind=f.kind, key=f.key, label=f.label, mean=f.mean, scale=f.scale))
    return FeatureSpec(groups=groups, signal_types=signal_types), weights
