"""The learned model compiled into the scoring SQL: per group a contribution column (logit units) and its words,
the calibrated probability, the predictive score and the top three contributions, all inside the one statement."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..models import FeatureKind, PredictiveModel
from .features import RECENT_DAYS, FeatureSpec, signal_count_columns
from .training import spec_from_features

TOP_REASONS = 3
KEY_SPAN = 1000  # groups per model are far fewer (a key's last three digits name its group)


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

    def signal_columns(self, p, now: datetime) -> list[str]:
        """The signal counts of the scan at `now` (the recent window's start bound once)."""
        p("recent_since", now - timedelta(days=RECENT_DAYS))
        return signal_count_columns(self.spec, ref_sql="%(now)s", since_sql="%(recent_since)s")

    def index_columns(self, p) -> list[str]:
        """`pi<j>`: each field group's value position among the learned values (NULL: none), over the lead `l` in c0,
        so the title and department regexes run once per lead."""
        # A jsonb object of value -> position: a key found by binary search, not a walk through the values.
        return [f"({p(f'pv{j}', json.dumps({v: i + 1 for i, v in enumerate(g.values)}))}::jsonb ->> {g.raw_sql})::int "
                f"AS pi{j}"
                for j, g in enumerate(self.spec.groups) if g.kind == FeatureKind.CATEGORY]

    def group_columns(self, p) -> list[str]:
        """`pg<j>` per group (its contribution in logit units, 0 when it does not apply) over the c0 row `l`, and what
        its words are made of, carried for the few leads whose words are written (`label_sql`): a category's value
        position `pi<j>`, a count `pn<j>`, a number's text `pt<j>`. `p(name, value)` binds a parameter."""
        cols, col = [], 0
        for j, g in enumerate(self.spec.groups):
            raw = g.raw_sql
            if g.kind == FeatureKind.CATEGORY:
                n = len(g.values)
                weights = "ARRAY[" + ", ".join(_num(w) for w in self.weights[col:col + n]) + "]"
                # The value's position, found once in c0 (`index_columns`).
                cols += [f"COALESCE(({weights})[l.pi{j}], 0) AS pg{j}", f"l.pi{j}"]
            elif g.kind == FeatureKind.NUMBER:
                w = self.weights[col]
                cols += [f"COALESCE({_num(w)} * (({raw}) - {_num(g.mean)}) / {_num(g.scale)}, 0) AS pg{j}",
                         f"{g.raw_text_sql} AS pt{j}"]
            elif g.kind == FeatureKind.FLAG:
                cols.append(f"CASE WHEN {raw} THEN {_num(self.weights[col])} ELSE 0 END AS pg{j}")
            else:
                cols += [f"{_num(self.weights[col])} * ln(1 + {raw}) AS pg{j}", f"{raw} AS pn{j}"]
            col += g.columns()
        return cols

    def label_sql(self, j: int, alias: str, p) -> str:
        """Group j's words for the row `alias` ("Industry: Healthcare", "Pricing page view (last 30 days): 3")."""
        g = self.spec.groups[j]
        if g.kind == FeatureKind.CATEGORY:
            return f"({p(f'pl{j}', g.value_labels)}::text[])[{alias}.pi{j}]"
        if g.kind == FeatureKind.NUMBER:
            return f"{p(f'pl{j}', g.label)}::text || ': ' || COALESCE({alias}.pt{j}, '?')"
        if g.kind == FeatureKind.FLAG:
            return f"{p(f'pl{j}', g.label)}::text"
        return f"{p(f'pl{j}', g.label)}::text || ': ' || {alias}.pn{j}::text"

    def logit_sql(self, alias: str) -> str:
        parts = [f"{alias}.pg{j}" for j in range(len(self.spec.groups))]
        return " + ".join([_num(self.model.intercept), *parts])

    def probability_sql(self, z: str) -> str:
        a, b = _num(self.model.platt_a), _num(self.model.platt_b)
        return f"(1.0 / (1.0 + exp(-LEAST(500, GREATEST(-500, {a} * ({z}) + {b})))))"

    def key_columns(self, alias: str) -> list[str]:
        """`pk<j>`: the size of group j's contribution (|logit units| to 1e-6, at most 1e6: exact in a float8) with j
        in its last three digits (NULL when it does not apply): unique per group, so the top three are found by
        GREATEST and the group read back from the key, instead of a sort per lead."""
        assert len(self.spec.groups) < KEY_SPAN
        return [f"CASE WHEN {alias}.pg{j} <> 0 "
                f"THEN floor(LEAST(abs({alias}.pg{j}), 1e6::float8) * 1e6::float8) * {KEY_SPAN} + {j} END AS pk{j}"
                for j in range(len(self.spec.groups))]

    def top_layers(self, source: str) -> list[tuple[str, str]]:
        """(name, SELECT) of the layers over `source` (a row with the `pk<j>`) that add `pm1`..`pm3`: the largest
        key, the largest below it, the largest below that. A layer each (OFFSET 0), so a key found is read, not
        computed again, by the next."""
        n = len(self.spec.groups)
        layers, previous = [], source
        for rank in range(1, min(TOP_REASONS, n) + 1):
            name = f"{source}{rank}"
            if rank == 1:
                keys = ", ".join(f"{previous}.pk{j}" for j in range(n))
            else:
                keys = ", ".join(f"CASE WHEN {previous}.pk{j} < {previous}.pm{rank - 1} THEN {previous}.pk{j} END"
                                 for j in range(n))
            layers.append((name, f"SELECT {previous}.*, GREATEST({keys}) AS pm{rank} FROM {previous} OFFSET 0"))
            previous = name
        return layers

    def reasons_sql(self, alias: str, p) -> str:
        """jsonb list of the top contributions (largest first), each in percentage points of probability it adds
        (or takes), over a row of the `top_layers` with `cz` and `cprob`. No sort and no subquery per lead: the
        three groups are read from the keys `pm<k>`, and only their words are made."""
        n = len(self.spec.groups)
        if not n:
            return "'[]'::jsonb"
        items = []
        for rank in range(1, min(TOP_REASONS, n) + 1):
            at = f"mod(({alias}.pm{rank})::bigint, {KEY_SPAN})"
            contribution = f"CASE {at} " + " ".join(f"WHEN {j} THEN {alias}.pg{j}" for j in range(n)) + " END"
            label = f"CASE {at} " + " ".join(f"WHEN {j} THEN {self.label_sql(j, alias, p)}" for j in range(n)) + " END"
            effect = f"round(100 * ({alias}.cprob - {self.probability_sql(f'{alias}.cz - ({contribution})')}))::int"
            items.append(f"CASE WHEN {alias}.pm{rank} IS NOT NULL AND {effect} <> 0 "
                         f"THEN jsonb_build_object('label', {label}, 'effect', {effect}) END")
        return f"to_jsonb(array_remove(ARRAY[{', '.join(items)}], NULL))"


def contribution_text(reason: dict) -> str:
    """"Industry: Healthcare +18 %"."""
    effect = int(reason.get("effect") or 0)
    return f"{reason.get('label', '')} {'+' if effect >= 0 else '−'}{abs(effect)} %"
