"""The learned model compiled into the scoring SQL: per group a contribution column (logit units) and its words,
the calibrated probability, the predictive score and the top three contributions, all inside the one statement."""
from __future__ import annotations

from dataclasses import dataclass

from ..models import FeatureKind, PredictiveModel
from .features import FeatureSpec, signal_count_columns
from .training import spec_from_features

TOP_REASONS = 3


def _num(value: float) -> str:
    return f"({float(value)!r})::float8"


@dataclass
class CompiledPredictive:
    model: PredictiveModel
    spec: FeatureSpec
    weights: list[float]

    @classmethod
    def load(cls, model: PredictiveModel, features: list) -> CompiledPredictive:
        spec, weights = spec_from_features(features)
        return cls(model=model, spec=spec, weights=weights)

    def signal_columns(self) -> list[str]:
        return signal_count_columns(self.spec, ref_sql="%(now)s")

    def index_columns(self, p) -> list[str]:
        """`pi<j>`: each field group's value position among the learned values (NULL: none), over the lead `l` in c0,
        so the title and department regexes run once per lead."""
        return [f"array_position({p(f'pv{j}', g.values)}::text[], {g.raw_sql}) AS pi{j}"
                for j, g in enumerate(self.spec.groups) if g.kind == FeatureKind.CATEGORY]

    def group_columns(self, p) -> list[str]:
        """`pg<j>` (contribution in logit units, 0 when it does not apply) and `pl<j>` (its words) per group,
        over the c0 row `l`; `p(name, value)` binds a parameter."""
        cols, col = [], 0
        for j, g in enumerate(self.spec.groups):
            raw = g.raw_sql
            if g.kind == FeatureKind.CATEGORY:
                n = len(g.values)
                weights = "ARRAY[" + ", ".join(_num(w) for w in self.weights[col:col + n]) + "]"
                at = f"l.pi{j}"  # the value's position, found once in c0 (`index_columns`)
                cols.append(f"COALESCE(({weights})[{at}], 0) AS pg{j}")
                cols.append(f"({p(f'pl{j}', g.value_labels)}::text[])[{at}] AS pl{j}")
            elif g.kind == FeatureKind.NUMBER:
                w = self.weights[col]
                cols.append(f"COALESCE({_num(w)} * (({raw}) - {_num(g.mean)}) / {_num(g.scale)}, 0) AS pg{j}")
                cols.append(f"{p(f'pl{j}', g.label)}::text || ': ' || COALESCE({g.raw_text_sql}, '?') AS pl{j}")
            elif g.kind == FeatureKind.FLAG:
                cols.append(f"CASE WHEN {raw} THEN {_num(self.weights[col])} ELSE 0 END AS pg{j}")
                cols.append(f"{p(f'pl{j}', g.label)}::text AS pl{j}")
            else:
                cols.append(f"{_num(self.weights[col])} * ln(1 + {raw}) AS pg{j}")
                cols.append(f"{p(f'pl{j}', g.label)}::text || ': ' || {g.raw_text_sql} AS pl{j}")
            col += g.columns()
        return cols

    def logit_sql(self, alias: str) -> str:
        parts = [f"{alias}.pg{j}" for j in range(len(self.spec.groups))]
        return " + ".join([_num(self.model.intercept), *parts])

    def probability_sql(self, z: str) -> str:
        a, b = _num(self.model.platt_a), _num(self.model.platt_b)
        return f"(1.0 / (1.0 + exp(-LEAST(500, GREATEST(-500, {a} * ({z}) + {b})))))"

    def reasons_sql(self, alias: str) -> str:
        """jsonb list of the top contributions, in percentage points of probability they add (or take)."""
        if not self.spec.groups:
            return "'[]'::jsonb"
        values = ", ".join(f"({alias}.pl{j}, {alias}.pg{j})" for j in range(len(self.spec.groups)))
        without = self.probability_sql(f"{alias}.cz - v.c")
        return (
            "(SELECT COALESCE(jsonb_agg(jsonb_build_object('label', r.label, 'effect', r.effect) "
            "ORDER BY abs(r.effect) DESC, r.label), '[]'::jsonb) FROM ("
            f"SELECT v.label, round(100 * ({alias}.cprob - {without}))::int AS effect "
            f"FROM (VALUES {values}) v(label, c) WHERE v.c <> 0 AND v.label IS NOT NULL "
            f"ORDER BY abs(v.c) DESC LIMIT {TOP_REASONS}) r WHERE r.effect <> 0)"
        )


def contribution_text(reason: dict) -> str:
    """"Industry: Healthcare +18 %"."""
    effect = int(reason.get("effect") or 0)
    return f"{reason.get('label', '')} {'+' if effect >= 0 else '−'}{abs(effect)} %"
