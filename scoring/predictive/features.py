"""Features of the learned model: what a lead is described by, as SQL over one lead row.

Each feature *group* reads one thing of a lead (a field value, a number, a flag, a signal type's count) through
one SQL expression over the alias `l` (the lead's columns, its account's `acc_score`/`acc_engaged`, and the
signal counts `ps_<i>`). Training reads the raw values of every group for the closed leads in one statement
(`training_rows_sql`) and turns them into the design matrix in numpy (`design_matrix`); scoring compiles the
stored weights into the same expressions (`scoring.engine`). Both read the very same SQL, so a lead's probability
in the database equals the fitted model's.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..engine import ATTRIBUTE_KEY
from ..models import FeatureKind

RECENT_DAYS = 30
NUMERIC_RE = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"

TITLE_LEVEL_SQL = (
    "CASE WHEN COALESCE(btrim(l.job_title), '') = '' THEN NULL "
    r"WHEN lower(l.job_title) ~ '\m(ceo|cto|cfo|coo|cmo|cio|cro|chief|founder|co-founder|owner|president)\M' "
    "THEN 'c-level' "
    r"WHEN lower(l.job_title) ~ '\m(vp|svp|evp|vice president)\M' THEN 'vp' "
    r"WHEN lower(l.job_title) ~ '\m(director|head)\M' THEN 'director' "
    r"WHEN lower(l.job_title) ~ '\m(manager|lead|supervisor)\M' THEN 'manager' "
    r"WHEN lower(l.job_title) ~ '\m(student|intern|trainee)\M' THEN 'student' "
    "ELSE 'individual contributor' END"
)
DEPARTMENT_SQL = (
    "CASE WHEN COALESCE(btrim(l.job_title), '') = '' THEN NULL "
    r"WHEN lower(l.job_title) ~ '\m(marketing|brand|growth|demand|cmo)\M' THEN 'marketing' "
    r"WHEN lower(l.job_title) ~ '\m(sales|account executive|business development|cro|revenue)\M' THEN 'sales' "
    r"WHEN lower(l.job_title) ~ '\m(engineer|engineering|developer|it|cto|cio|technology|devops|data)\M' "
    "THEN 'engineering / it' "
    r"WHEN lower(l.job_title) ~ '\m(finance|cfo|accounting|controller)\M' THEN 'finance' "
    r"WHEN lower(l.job_title) ~ '\m(hr|people|talent|recruit\w*)\M' THEN 'people / hr' "
    r"WHEN lower(l.job_title) ~ '\m(operations|coo|ops)\M' THEN 'operations' "
    "ELSE 'other' END"
)
EMPLOYEE_BAND_SQL = (
    "CASE WHEN l.company_size IS NULL THEN NULL WHEN l.company_size <= 10 THEN '1-10' "
    "WHEN l.company_size <= 50 THEN '11-50' WHEN l.company_size <= 200 THEN '51-200' "
    "WHEN l.company_size <= 1000 THEN '201-1000' WHEN l.company_size <= 5000 THEN '1001-5000' ELSE '5000+' END"
)

# Field values one-hot encoded: key -> (SQL of the raw text, label).
CATEGORIES: dict[str, tuple[str, str]] = {
    "industry": ("l.industry", "Industry"),
    "country": ("l.country", "Country"),
    "source": ("l.source", "Lead source"),
    "campaign": ("l.campaign", "Campaign"),
    "utm_source": ("l.utm_source", "UTM source"),
    "utm_medium": ("l.utm_medium", "UTM medium"),
    "utm_campaign": ("l.utm_campaign", "UTM campaign"),
    "title_level": (TITLE_LEVEL_SQL, "Title level"),
    "department": (DEPARTMENT_SQL, "Department"),
    "employee_band": (EMPLOYEE_BAND_SQL, "Employees"),
}
# Numbers, scaled by their training mean and standard deviation: key -> (SQL, raw text SQL, label).
NUMBERS: dict[str, tuple[str, str, str]] = {
    "company_size": ("ln(1 + GREATEST(l.company_size, 0)::float8)", "l.company_size::text", "Company size"),
    "account_score": ("l.acc_score::float8", "l.acc_score::text", "Account score"),
    "account_engaged": ("ln(1 + GREATEST(l.acc_engaged, 0)::float8)", "l.acc_engaged::text",
                        "Engaged people at the account"),
}
FLAGS: dict[str, tuple[str, str]] = {
    "is_personal_email": ("l.is_personal_email", "Free-mail address"),
    "marketing_consent": ("l.marketing_consent", "Marketing consent"),
    "has_phone": ("(COALESCE(l.phone, '') <> '')", "Phone number given"),
}
RECENCIES = {"recent": f"last {RECENT_DAYS} days", "older": f"older than {RECENT_DAYS} days"}

MAX_VALUES = 25  # most one-hot values per field (the rest count as "other", the baseline)
MAX_SIGNAL_TYPES = 20
MAX_ATTRIBUTES = 20


def attribute_sql(key: str) -> str:
    if not ATTRIBUTE_KEY.match(key):
        raise KeyError(key)
    return f"(l.attributes ->> '{key}')"


def attribute_number_sql(key: str) -> str:
    raw = attribute_sql(key)
    return f"(CASE WHEN {raw} ~ '{NUMERIC_RE}' THEN ({raw})::float8 END)"


def attribute_label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def signal_label(signal_type: str, recency: str) -> str:
    return f"{signal_type.replace('_', ' ').capitalize()} ({RECENCIES[recency]})"


@dataclass
class Group:
    """One thing read of a lead; its design columns are `values` (category), else one column."""

    kind: str
    key: str
    label: str
    values: list[str] = field(default_factory=list)  # category: lower-case values with a column each
    value_labels: list[str] = field(default_factory=list)
    mean: float = 0.0
    scale: float = 1.0
    signal_index: int | None = None  # signal: the `ps_<i>` column of the signal counts

    @property
    def raw_sql(self) -> str:
        """The group's raw value of lead `l`: lower-case text, a number, a boolean or a count."""
        if self.kind == FeatureKind.CATEGORY:
            base = attribute_sql(self.key[len("attributes."):]) if self.key.startswith("attributes.") \
                else CATEGORIES[self.key][0]
            return f"lower(btrim(({base})::text))"
        if self.kind == FeatureKind.NUMBER:
            if self.key.startswith("attributes."):
                return attribute_number_sql(self.key[len("attributes."):])
            return NUMBERS[self.key][0]
        if self.kind == FeatureKind.FLAG:
            return f"COALESCE({FLAGS[self.key][0]}, false)"
        return f"COALESCE(l.ps_{self.signal_index}, 0)"

    @property
    def raw_text_sql(self) -> str:
        """How the lead's value reads in a contribution's words (numbers and counts)."""
        if self.kind == FeatureKind.NUMBER:
            if self.key.startswith("attributes."):
                return attribute_sql(self.key[len("attributes."):])
            return NUMBERS[self.key][1]
        return f"COALESCE(l.ps_{self.signal_index}, 0)::text"

    def columns(self) -> int:
        return len(self.values) if self.kind == FeatureKind.CATEGORY else 1


@dataclass
class FeatureSpec:
    groups: list[Group]
    signal_types: list[tuple[str, str]]  # (type, recency) per ps_<i>

    @property
    def uses_account(self) -> bool:
        return any(g.kind == FeatureKind.NUMBER and g.key.startswith("account_") for g in self.groups)

    def width(self) -> int:
        return sum(g.columns() for g in self.groups)

    def names(self) -> list[str]:
        out = []
        for g in self.groups:
            out.extend(f"{g.key}={v}" for v in g.values) if g.kind == FeatureKind.CATEGORY else out.append(g.key)
        return out


def signal_count_columns(spec: FeatureSpec, *, ref_sql: str, alias: str = "s", since_sql: str | None = None) -> list[str]:
    """COUNT … FILTER columns `ps_<i>` of the spec's signal groups, relative to the time `ref_sql`: the caller's
    WHERE keeps only the signals at or before it. `since_sql`, the start of the recent window when the caller has it
    as one value (a bound parameter is read; `ref - interval` is reckoned again for every signal and column)."""
    since = since_sql or f"{ref_sql} - interval '{RECENT_DAYS} days'"
    cols = []
    for i, (signal_type, recency) in enumerate(spec.signal_types):
        lit = "'" + signal_type.replace("'", "''") + "'"
        when = f"{alias}.occurred_at {'>' if recency == 'recent' else '<='} {since}"
        cols.append(f"COUNT(*) FILTER (WHERE {alias}.type = {lit} AND {when}) AS ps_{i}")
    return cols


# --- discovering the groups from the closed history ------------------------------------------------------


def _closed_leads_sql() -> str:
    return ("FROM leads_outcome o JOIN leads_lead l ON l.id = o.lead_id AND l.tenant_id = o.tenant_id "
            "WHERE o.tenant_id = %(tenant)s")


def spec_discover(cursor, *, tenant_id: int, closed: int) -> FeatureSpec:
    """The groups worth a weight for this tenant: each field's frequent values (rare ones capped into the
    baseline), custom attributes (numeric or categorical), the frequent signal types."""
    min_support = max(5, int(0.01 * closed))
    groups: list[Group] = []
    category_sql = dict(CATEGORIES)
    cursor.execute(
        "SELECT k, count(*), count(*) FILTER (WHERE v ~ %(num)s) FROM (SELECT e.key AS k, e.value AS v "
        "FROM leads_outcome o JOIN leads_lead l ON l.id = o.lead_id AND l.tenant_id = o.tenant_id "
        "CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(l.attributes) = 'object' "
        "THEN l.attributes ELSE '{}'::jsonb END) e WHERE o.tenant_id = %(tenant)s) x "
        "GROUP BY k HAVING count(*) >= %(min)s "
        "ORDER BY count(*) DESC, k LIMIT 200",
        {"tenant": tenant_id, "num": NUMERIC_RE, "min": min_support},
    )
    attributes = [(k, n, n_num) for k, n, n_num in cursor.fetchall() if ATTRIBUTE_KEY.match(k)][:MAX_ATTRIBUTES]
    for key, n, n_num in attributes:
        if n_num >= 0.9 * n:
            groups.append(Group(kind=FeatureKind.NUMBER, key=f"attributes.{key}", label=attribute_label(key)))
        else:
            category_sql[f"attributes.{key}"] = (attribute_sql(key), attribute_label(key))
    # Every field's frequent values in one scan: (field, value, count, most common spelling).
    unions = " UNION ALL ".join(
        f"SELECT {i} AS f, lower(btrim(({expr})::text)) AS v, btrim(({expr})::text) AS shown FROM c l"
        for i, (expr, _label) in enumerate(category_sql.values())
    )
    cursor.execute(
        f"WITH c AS MATERIALIZED (SELECT l.* {_closed_leads_sql()}), u AS ({unions}) "
        "SELECT f, v, count(*), mode() WITHIN GROUP (ORDER BY shown) FROM u WHERE COALESCE(v, '') <> '' "
        "GROUP BY f, v HAVING count(*) >= %(min)s ORDER BY f, count(*) DESC, v",
        {"tenant": tenant_id, "min": min_support},
    )
    values: dict[int, list[tuple[str, str]]] = {}
    for f, v, _n, shown in cursor.fetchall():
        if len(values.setdefault(f, [])) < MAX_VALUES:
            values[f].append((v, shown))
    for i, (key, (_expr, label)) in enumerate(category_sql.items()):
        found = values.get(i, [])
        if len(found) >= 1:
            groups.append(Group(kind=FeatureKind.CATEGORY, key=key, label=label, values=[v for v, _ in found],
                                value_labels=[f"{label}: {shown}" for _, shown in found]))
    groups.extend(Group(kind=FeatureKind.NUMBER, key=key, label=label) for key, (_e, _t, label) in NUMBERS.items())
    groups.extend(Group(kind=FeatureKind.FLAG, key=key, label=label) for key, (_e, label) in FLAGS.items())
    cursor.execute(
        "SELECT s.type, count(*) FROM leads_signal s JOIN leads_outcome o ON o.lead_id = s.lead_id "
        "AND o.tenant_id = s.tenant_id WHERE s.tenant_id = %(tenant)s AND s.occurred_at <= o.closed_at "
        "GROUP BY s.type HAVING count(DISTINCT s.lead_id) >= %(min)s ORDER BY count(*) DESC, s.type LIMIT %(n)s",
        {"tenant": tenant_id, "min": min_support, "n": MAX_SIGNAL_TYPES},
    )
    signal_types = []
    for signal_type, _n in cursor.fetchall():
        for recency in RECENCIES:
            groups.append(Group(kind=FeatureKind.SIGNAL, key=signal_type, label=signal_label(signal_type, recency),
                                signal_index=len(signal_types)))
            signal_types.append((signal_type, recency))
    return FeatureSpec(groups=groups, signal_types=signal_types)


def training_rows_sql(spec: FeatureSpec) -> str:
    """(lead id, won, closed_at, points score, raw value of each group …) of every closed lead, oldest first;
    signals are counted relative to the lead's close date (what was known when it closed)."""
    sig_cols = signal_count_columns(spec, ref_sql="o.closed_at")
    sig = (", sig AS (SELECT s.lead_id, " + ", ".join(sig_cols) + " FROM leads_signal s JOIN leads_outcome o "
           "ON o.lead_id = s.lead_id AND o.tenant_id = s.tenant_id WHERE s.tenant_id = %(tenant)s "
           "AND s.occurred_at <= o.closed_at GROUP BY s.lead_id)") if sig_cols else ""
    ps = "".join(f", sig.ps_{i}" for i in range(len(spec.signal_types)))
    raws = "".join(f", {g.raw_sql}" for g in spec.groups)
    return (
        "WITH c AS (SELECT l.*, o.result, o.closed_at AS o_closed_at, a.score AS acc_score, a.engaged_leads AS acc_engaged "
        "FROM leads_outcome o JOIN leads_lead l ON l.id = o.lead_id AND l.tenant_id = o.tenant_id "
        "LEFT JOIN leads_account a ON a.id = l.account_id AND a.tenant_id = l.tenant_id "
        f"WHERE o.tenant_id = %(tenant)s){sig}, "
        f"l AS (SELECT c.*{ps} FROM c{' LEFT JOIN sig ON sig.lead_id = c.id' if sig_cols else ''}) "
        f"SELECT l.id, (l.result = 'won') AS won, l.o_closed_at, l.score{raws} FROM l ORDER BY l.o_closed_at, l.id"
    )


def lead_rows_sql(spec: FeatureSpec) -> str:
    """The raw values of each group for the leads `%(ids)s` as the scoring statement sees them at `%(now)s`."""
    sig_cols = signal_count_columns(spec, ref_sql="%(now)s")
    sig = (", sig AS (SELECT s.lead_id, " + ", ".join(sig_cols) + " FROM leads_signal s WHERE s.tenant_id = "
           "%(tenant)s AND s.lead_id = ANY(%(ids)s::uuid[]) AND s.occurred_at <= %(now)s GROUP BY s.lead_id)"
           ) if sig_cols else ""
    ps = "".join(f", sig.ps_{i}" for i in range(len(spec.signal_types)))
    raws = "".join(f", {g.raw_sql}" for g in spec.groups)
    return (
        "WITH c AS (SELECT l.*, a.score AS acc_score, a.engaged_leads AS acc_engaged FROM leads_lead l "
        "LEFT JOIN leads_account a ON a.id = l.account_id AND a.tenant_id = l.tenant_id "
        f"WHERE l.tenant_id = %(tenant)s AND l.id = ANY(%(ids)s::uuid[])){sig}, "
        f"l AS (SELECT c.*{ps} FROM c{' LEFT JOIN sig ON sig.lead_id = c.id' if sig_cols else ''}) "
        f"SELECT l.id{raws} FROM l ORDER BY l.id"
    )


def scale_fit(spec: FeatureSpec, rows: list[tuple], offset: int) -> None:
    """Each number's mean and standard deviation over the training rows (missing values left out)."""
    for j, g in enumerate(spec.groups):
        if g.kind != FeatureKind.NUMBER:
            continue
        xs = np.array([float(r[offset + j]) for r in rows if r[offset + j] is not None], dtype=float)
        g.mean = float(xs.mean()) if xs.size else 0.0
        std = float(xs.std()) if xs.size else 0.0
        g.scale = std if std > 1e-9 else 1.0


def design_matrix(spec: FeatureSpec, rows: list[tuple], offset: int) -> np.ndarray:
    """Rows of raw group values (from column `offset` on) → the model's design matrix."""
    X = np.zeros((len(rows), spec.width()), dtype=float)
    col = 0
    for j, g in enumerate(spec.groups):
        raw = [r[offset + j] for r in rows]
        if g.kind == FeatureKind.CATEGORY:
            index = {v: i for i, v in enumerate(g.values)}
            for n, v in enumerate(raw):
                if v in index:
                    X[n, col + index[v]] = 1.0
        elif g.kind == FeatureKind.NUMBER:
            X[:, col] = [0.0 if v is None else (float(v) - g.mean) / g.scale for v in raw]
        elif g.kind == FeatureKind.FLAG:
            X[:, col] = [1.0 if v else 0.0 for v in raw]
        else:
            X[:, col] = [math.log1p(float(v or 0)) for v in raw]
        col += g.columns()
    return X


SAFE_KEY = re.compile(r"^[A-Za-z0-9_.:\- ]{1,100}$")
