"""The scoring engine: compiles a scoring model into one set-based SQL statement.

Every score is computed inside PostgreSQL, for one lead or a million, by the same SQL: each rule
becomes a column holding its contribution (NULL when it does not apply), the contributions are
summed by category and clamped to 0–100, and the very same columns are stored as the lead's
breakdown. So the score always equals the clamped sum of the contributions it lists, by
construction; there is no second implementation that could drift from it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leads.countries import country_code, country_spellings

from .models import (
    ENGAGEMENT_CATEGORIES,
    FIT_CATEGORIES,
    Category,
    LeadClass,
    Operator,
    ScoreBand,
    ScoringModel,
    ScoringRule,
)

TEXT, NUMBER, BOOLEAN = "text", "number", "boolean"

# Lead fields a rule may read: name -> (SQL over alias `l`, type). `attributes.<key>` reads a
# custom form field; `email_domain` and `days_inactive` are derived.
FIELDS: dict[str, tuple[str, str]] = {
    "job_title": ("l.job_title", TEXT),
    "company": ("l.company", TEXT),
    "company_domain": ("l.company_domain", TEXT),
    "company_size": ("l.company_size", NUMBER),
    "industry": ("l.industry", TEXT),
    "country": ("l.country", TEXT),
    "source": ("l.source", TEXT),
    "campaign": ("l.campaign", TEXT),
    "utm_source": ("l.utm_source", TEXT),
    "utm_medium": ("l.utm_medium", TEXT),
    "utm_campaign": ("l.utm_campaign", TEXT),
    "email": ("l.email", TEXT),
    "email_domain": ("split_part(l.email, '@', 2)", TEXT),
    "phone": ("l.phone", TEXT),
    "is_personal_email": ("l.is_personal_email", BOOLEAN),
    "marketing_consent": ("l.marketing_consent", BOOLEAN),
    "days_inactive": ("(EXTRACT(EPOCH FROM (%(now)s - COALESCE(l.last_activity_at, l.created_at))) / 86400.0)",
                      NUMBER),
}
# Fields holding an ISO 3166-1 alpha-2 code: "equals"/"in_list" rules compare countries, not spellings.
COUNTRY_FIELDS = frozenset({"country"})
# What the scoring SQL reads of a lead: every column FIELDS uses plus the previous results.
LEAD_COLUMNS = ", ".join(f"l.{c}" for c in (
    "id", "score", "band", "is_hot", "lead_class", "cold_since", "stage", "job_title", "company", "company_domain",
    "company_size", "industry", "country", "source", "campaign", "utm_source", "utm_medium", "utm_campaign", "email",
    "phone", "is_personal_email", "marketing_consent", "last_activity_at", "created_at", "attributes",
))
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
OPERATORS_BY_TYPE = {
    TEXT: {Operator.EQUALS, Operator.IN_LIST, Operator.CONTAINS, Operator.KEYWORDS, Operator.REGEX,
           Operator.NOT_BLANK, Operator.RANGE},
    NUMBER: {Operator.RANGE, Operator.NOT_BLANK},
    BOOLEAN: {Operator.IS_TRUE},
}
# Lead fields whose change must trigger a re-score (field edits, merges that fill blanks).
SCORING_FIELDS = frozenset(
    {"job_title", "company", "company_domain", "company_size", "industry", "country", "source", "campaign",
     "utm_source", "utm_medium", "utm_campaign", "email", "phone", "is_personal_email", "marketing_consent",
     "attributes"}
)


def country_match_values(values: list) -> list[str]:
    """What a country rule's `lower(l.country) = ANY(…)` compares with: each country's ISO code, and for
    rows stored before countries were canonical, its other spellings ("usa", "united states" …);
    a value that is no country compares as typed."""
    out: set[str] = set()
    for value in values:
        text = str(value).strip()
        code = country_code(text)
        out |= country_spellings(code) if code else {text.lower()}
    return sorted(out)


def field_sql(name: str) -> tuple[str, str, dict]:
    """(SQL expression, type, params) of a rule field; KeyError for an unknown field."""
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        if not ATTRIBUTE_KEY.match(key):
            raise KeyError(name)
        param = f"attr_{key}"
        return f"(l.attributes ->> %({param})s)", TEXT, {param: key}
    expr, kind = FIELDS[name]
    return expr, kind, {}


def pg_regex_escape(word: str) -> str:
    return re.sub(r"([\\.^$|?*+()\[\]{}-])", r"\\\1", word)


def keywords_regex(words: list[str]) -> str:
    """A PostgreSQL regex matching any of the words (or phrases) as whole words."""
    return r"\m(" + "|".join(pg_regex_escape(w.strip().lower()) for w in words if w.strip()) + r")\M"


@dataclass
class CompiledModel:
    """The SQL pieces of one scoring model, with their parameters."""

    model: ScoringModel
    rules: list[ScoringRule]
    bands: list[ScoreBand]
    params: dict = field(default_factory=dict)
    rule_columns: list[str] = field(default_factory=list)  # SQL expression per rule (contribution or NULL)
    signal_columns: list[str] = field(default_factory=list)  # aggregate expressions of the signal CTE
    dq_conditions: list[tuple[str, str]] = field(default_factory=list)  # (condition, rule name)
    signal_types: list[str] = field(default_factory=list)
    group_columns: list[str] = field(default_factory=list)  # winner of each exclusive group (rule id)
    predictive: object | None = None  # scoring.predictive.compiled.CompiledPredictive: the tenant's learned model

    def p(self, name: str, value) -> str:
        self.params[name] = value
        return f"%({name})s"


def _condition(compiled: CompiledModel, rule: ScoringRule) -> str:
    expr, kind, extra = field_sql(rule.field)
    compiled.params.update(extra)
    rid = rule.pk
    op, value = rule.operator, rule.value
    if kind == NUMBER and op == Operator.RANGE:
        target = expr
    elif op == Operator.RANGE:  # a number typed into a text field (custom attributes)
        target = f"(CASE WHEN {expr} ~ '^\\s*-?[0-9]+(\\.[0-9]+)?\\s*$' THEN ({expr})::numeric END)"
    if rule.field in COUNTRY_FIELDS and op in (Operator.EQUALS, Operator.IN_LIST):
        values = value if isinstance(value, list) else [value]
        return f"lower({expr}) = ANY({compiled.p(f'v{rid}', country_match_values(values))})"
    if op == Operator.EQUALS:
        return f"lower({expr}) = lower({compiled.p(f'v{rid}', str(value))})"
    if op == Operator.IN_LIST:
        return f"lower({expr}) = ANY({compiled.p(f'v{rid}', [str(v).strip().lower() for v in value or []])})"
    if op == Operator.CONTAINS:
        return f"strpos(lower({expr}), lower({compiled.p(f'v{rid}', str(value))})) > 0"
    if op == Operator.KEYWORDS:
        return f"lower({expr}) ~ {compiled.p(f'v{rid}', keywords_regex(list(value or [])))}"
    if op == Operator.REGEX:
        return f"{expr} ~* {compiled.p(f'v{rid}', str(value))}"
    if op == Operator.RANGE:
        parts = []
        if (value or {}).get("min") is not None:
            parts.append(f"{target} >= {compiled.p(f'min{rid}', value['min'])}")
        if (value or {}).get("max") is not None:
            parts.append(f"{target} <= {compiled.p(f'max{rid}', value['max'])}")
        return "(" + " AND ".join(parts or [f"{target} IS NOT NULL"]) + ")"
    if op == Operator.IS_TRUE:
        return f"({expr} IS TRUE)"
    if op == Operator.NOT_BLANK:
        return f"(COALESCE(({expr})::text, '') <> '')"
    raise ValueError(f"operator {op} cannot be compiled for field {rule.field}")


def _capped(rule: ScoringRule, amount: str) -> str:
    if rule.cap is None:
        return amount
    if rule.points >= 0:
        return f"LEAST({amount}, {int(rule.cap)})"
    return f"GREATEST({amount}, {-int(rule.cap)})"


def compile_model(model: ScoringModel, *, rules=None, bands=None) -> CompiledModel:
    rules = list(rules if rules is not None else ScoringRule.objects.for_tenant(model.tenant_id)
                 .filter(model=model, is_active=True).order_by("position", "id"))
    bands = list(bands if bands is not None else ScoreBand.objects.for_tenant(model.tenant_id).filter(model=model).order_by("min_score"))
    compiled = CompiledModel(model=model, rules=rules, bands=bands)
    # An exclusive group ("title seniority": C-level, else VP, else manager …) becomes one CASE
    # evaluated once per lead in an inner layer, naming the rule that won; each rule of the group
    # then only compares that name. Guarding every rule with NOT (every earlier condition) instead
    # would evaluate the group's regexes again for every later rule.
    groups: dict[str, list[tuple[int, str]]] = {}
    for rule in rules:
        rid = rule.pk
        if rule.operator == Operator.SIGNAL:
            type_param = compiled.p(f"t{rid}", rule.signal_type)
            compiled.signal_types.append(rule.signal_type)
            if rule.once_per_days:
                bucket = f"floor(EXTRACT(EPOCH FROM s.occurred_at) / {int(rule.once_per_days) * 86400})"
                compiled.signal_columns.append(f"COUNT(DISTINCT {bucket}) FILTER (WHERE s.type = {type_param}) AS n{rid}")
            else:
                compiled.signal_columns.append(f"COUNT(*) FILTER (WHERE s.type = {type_param}) AS n{rid}")
            condition = f"COALESCE({SIGNAL_SOURCE}.n{rid}, 0) > 0"
            amount = _capped(rule, f"l.n{rid} * {int(rule.points)}")
        else:
            condition = _condition(compiled, rule)
            amount = str(int(rule.points))
        group = rule.exclusive_group.strip()
        applies = condition.replace(SIGNAL_SOURCE, "l")
        if group:
            members = groups.setdefault(group, [])
            members.append((rid, condition))
            applies = f"l.g{_group_index(groups, group)} = {rid}"
        compiled.rule_columns.append(f"CASE WHEN {applies} THEN {amount} END")
        if rule.disqualifies:
            compiled.dq_conditions.append((f"COALESCE(({applies}), false)", rule.name))
    compiled.group_columns = [
        "CASE " + " ".join(f"WHEN {cond.replace(SIGNAL_SOURCE, 'sig')} THEN {rid}" for rid, cond in members)
        + f" END AS g{index}"
        for index, members in enumerate(groups.values())
    ]
    if model.predictive_model_id:
        from .models import PredictiveFeature
        from .predictive.compiled import CompiledPredictive

        features = list(PredictiveFeature.objects.for_tenant(model.tenant_id)
                        .filter(model_id=model.predictive_model_id).select_related("model"))
        if features:
            compiled.predictive = CompiledPredictive.load(features[0].model, features)
    return compiled


# Stands for the relation holding a rule's signal count: `sig` inside c0, the c0 row `l` above it.
SIGNAL_SOURCE = "__signal_source__"


def _group_index(groups: dict, group: str) -> int:
    return list(groups).index(group)


def _sum(compiled: CompiledModel, categories) -> str:
    cols = [f"COALESCE(c.r{r.pk}, 0)" for r in compiled.rules if r.category in categories]
    return " + ".join(cols) if cols else "0"


def _breakdown(compiled: CompiledModel) -> str:
    """jsonb {rule key: points} of the rules that apply (NULLs stripped); chunks stay under 100 args."""
    pairs = [f"{compiled.p(f'k{r.pk}', r.key)}::text, c.r{r.pk}" for r in compiled.rules]
    if not pairs:
        return "'{}'::jsonb"
    chunks = [pairs[i:i + 45] for i in range(0, len(pairs), 45)]
    return "jsonb_strip_nulls(" + " || ".join(f"jsonb_build_object({', '.join(ch)})" for ch in chunks) + ")"


def _band_case(compiled: CompiledModel, score: str) -> str:
    whens = " ".join(
        f"WHEN {score} BETWEEN {int(b.min_score)} AND {int(b.max_score)} THEN {compiled.p(f'band{b.pk}', b.key)}"
        for b in compiled.bands
    )
    return f"(CASE {whens} ELSE '' END)" if whens else "''"


def _class_case(compiled: CompiledModel, a: str) -> tuple[str, str]:
    """(lead class CASE, reason text) over alias `a` having fit, eng and dq columns."""
    m = compiled.model
    fh, fm = int(m.fit_high_min), int(m.fit_medium_min)
    er, es = int(m.engagement_ready_min), int(m.engagement_some_min)
    klass = (
        f"CASE WHEN {a}.dq THEN '{LeadClass.LOW_FIT}' "
        f"WHEN {a}.fit >= {fh} AND {a}.eng >= {er} THEN '{LeadClass.HIGH_FIT}' "
        f"WHEN {a}.fit >= {fm} AND {a}.eng >= {es} THEN '{LeadClass.NURTURE}' "
        f"WHEN {a}.fit >= {fm} THEN '{LeadClass.FUTURE_FIT}' "
        f"ELSE '{LeadClass.LOW_FIT}' END"
    )
    fit_level = f"CASE WHEN {a}.fit >= {fh} THEN 'high' WHEN {a}.fit >= {fm} THEN 'medium' ELSE 'low' END"
    # Whole phrases, so the reason reads as English at every level ("shows no buying intent yet", never
    # "shows none intent").
    eng_level = (f"CASE WHEN {a}.eng >= {er} THEN 'shows buying intent now' "
                 f"WHEN {a}.eng >= {es} THEN 'shows some interest' ELSE 'shows no buying intent yet' END")
    reason = (
        f"CASE WHEN {a}.dq THEN 'Disqualified: ' || {a}.dq_names "
        f"ELSE format('Fit %%s is %%s (high from {fh}, medium from {fm}); engagement %%s %%s "
        f"(ready from {er}, some from {es})', {a}.fit, {fit_level}, {a}.eng, {eng_level}) END"
    )
    return klass, reason


def _dq_columns(compiled: CompiledModel) -> str:
    if not compiled.dq_conditions:
        return "false AS dq, NULL::text AS dq_names"
    any_dq = " OR ".join(cond for cond, _ in compiled.dq_conditions)
    names = ", ".join(
        f"CASE WHEN {cond} THEN {compiled.p(f'dqn{i}', name)}::text END"
        for i, (cond, name) in enumerate(compiled.dq_conditions)
    )
    return f"({any_dq}) AS dq, concat_ws(', ', {names}) AS dq_names"


def scored_rows_sql(compiled: CompiledModel, *, tenant_id: int, now: datetime, lead_ids=None,
                    id_range: tuple[str | None, str | None] | None = None, as_of: str | None = None) -> str:
    """SELECT of every lead to score with its new score, parts, band, class and old values.

    `lead_ids` limits it to those leads; `id_range` (low inclusive, high exclusive, None: open)
    to one slice of the tenant's leads by id, so slices can run side by side.

    `as_of` (the backtest, `scoring.backtest`) is a SELECT of `(lead_id, as_of)` rows: only those leads are
    scored, each as the model would have scored it at its own `as_of` time (signals in the engagement window
    before it, inactivity up to it) instead of at `now`. Without it the statement is unchanged.
    """
    model = compiled.model
    compiled.p("tenant", tenant_id)
    compiled.p("now", now)
    compiled.p("window_start", now - timedelta(days=int(model.engagement_window_days)))
    if as_of is not None:
        return _scored_rows_as_of_sql(compiled, as_of)
    only = sig_only = ""
    if lead_ids is not None:
        compiled.p("ids", [str(i) for i in lead_ids])
        only, sig_only = "AND l.id = ANY(%(ids)s::uuid[])", "AND s.lead_id = ANY(%(ids)s::uuid[])"
    if id_range is not None:
        low, high = id_range
        for bound, op, name in ((low, ">=", "id_low"), (high, "<", "id_high")):
            if bound is not None:
                compiled.p(name, str(bound))
                only += f" AND l.id {op} %({name})s::uuid"
                sig_only += f" AND s.lead_id {op} %({name})s::uuid"
    sig_cte = "sig AS (SELECT NULL::uuid AS lead_id WHERE false)"
    learned = compiled.predictive
    learned_sig = learned.signal_columns(compiled.p, now) if learned is not None else []
    if learned_sig:
        # One scan of the signals for both: the learned model also counts signals older than the rules' window,
        # so the window moves from the scan into each rule's count.
        compiled.p("types", sorted(set(compiled.signal_types) | {t for t, _ in learned.spec.signal_types}))
        windowed = [c.replace("FILTER (WHERE ", "FILTER (WHERE s.occurred_at >= %(window_start)s AND ", 1)
                     for c in compiled.signal_columns]
        sig_cte = (
            "sig AS (SELECT s.lead_id, " + ", ".join(windowed + learned_sig) + " FROM leads_signal s "
            "WHERE s.tenant_id = %(tenant)s AND s.lead_id IS NOT NULL AND s.type = ANY(%(types)s) "
            "AND s.occurred_at <= %(now)s " + sig_only + " GROUP BY s.lead_id)"
        )
    elif compiled.signal_columns:
        compiled.p("types", sorted(set(compiled.signal_types)))
        sig_cte = (
            "sig AS (SELECT s.lead_id, " + ", ".join(compiled.signal_columns) + " FROM leads_signal s "
            "WHERE s.tenant_id = %(tenant)s AND s.lead_id IS NOT NULL AND s.type = ANY(%(types)s) "
            "AND s.occurred_at >= %(window_start)s AND s.occurred_at <= %(now)s " + sig_only + " GROUP BY s.lead_id)"
        )
    rule_cols = ", ".join(f"{expr} AS r{r.pk}" for r, expr in zip(compiled.rules, compiled.rule_columns, strict=True))
    klass, reason = _class_case(compiled, "s")
    fit = _sum(compiled, FIT_CATEGORIES)
    eng = _sum(compiled, ENGAGEMENT_CATEGORIES)
    cats = ", ".join(f"({_sum(compiled, (cat,))}) AS cat_{cat}" for cat in Category.values)
    sig_cols = "".join(f", sig.n{r.pk}" for r in compiled.rules if r.operator == Operator.SIGNAL)
    group_cols = "".join(", " + g for g in compiled.group_columns)
    account_join = learned_cols = prob_cols = final_cols = ""
    top_layers: list[tuple[str, str]] = []
    score = "GREATEST(0, LEAST(100, t.fit + t.eng))"
    if learned is not None:
        sig_cols += "".join(f", sig.ps_{i}" for i in range(len(learned.spec.signal_types)))
        sig_cols += "".join(", " + c for c in learned.index_columns(compiled.p))
        sig_cols += ", l.conversion_probability AS old_cprob, l.predictive_reasons AS old_preasons"
        if learned.spec.uses_account:
            sig_cols += ", acc.score AS acc_score, acc.engaged_leads AS acc_engaged"
            account_join = " LEFT JOIN leads_account acc ON acc.id = l.account_id"
        learned_cols = ", l.old_cprob, l.old_preasons" + "".join(", " + c for c in learned.group_columns(compiled.p))
        z = learned.logit_sql("c")
        prob_cols = f", ({z}) AS cz, {learned.probability_sql(z)} AS cprob" + "".join(
            ", " + k for k in learned.key_columns("c"))
        top_layers = learned.top_layers("t")
        blend = int(model.predictive_blend or 0)
        if blend:
            # The composite: the points score and the predictive score, weighted by the model's blend.
            score = (f"round(({100 - blend} * GREATEST(0, LEAST(100, t.fit + t.eng)) "
                     f"+ {blend} * round(100 * t.cprob)) / 100.0)::int")
        # The top contributions in words only for a lead whose probability moved: the same probability from the
        # same weights is the same contributions, so a re-score that changes nothing keeps the stored words. They
        # are picked by keys (`top_layers`), not a sort per lead: the sort was 29 us a lead, 3x the rest of the model.
        final_cols = (f", round(100 * s.cprob)::int AS pscore, CASE WHEN s.old_preasons IS NOT NULL "
                      f"AND s.old_cprob IS NOT DISTINCT FROM s.cprob THEN s.old_preasons "
                      f"ELSE {learned.reasons_sql('s', compiled.p)} END AS preasons")
    return (
        f"WITH {sig_cte}, "
        # The lead columns rules can read (not the wide score columns), the signal counts and the
        # winner of each exclusive group; the rules below read this row as `l`.
        f"c0 AS (SELECT {LEAD_COLUMNS}{sig_cols}{group_cols} "
        f"FROM leads_lead l LEFT JOIN sig ON sig.lead_id = l.id{account_join} "
        # OFFSET 0 fences: otherwise PostgreSQL folds the layers into the final SELECT and evaluates
        # every rule's CASE (regexes included) once per reference (sums, breakdown, class, reason).
        f"WHERE l.tenant_id = %(tenant)s {only} OFFSET 0), "
        "c AS (SELECT l.id, l.score AS old_score, l.band AS old_band, l.is_hot AS old_hot, l.lead_class AS old_class, "
        "l.cold_since, "
        f"l.stage, {_dq_columns(compiled)}" + (", " + rule_cols if rule_cols else "") + learned_cols + " "
        "FROM c0 l OFFSET 0), "
        f"t AS (SELECT c.*, ({fit}) AS fit, ({eng}) AS eng, {cats}, {_breakdown(compiled)} AS breakdown{prob_cols} "
        "FROM c OFFSET 0), "
        + "".join(f"{name} AS ({select}), " for name, select in top_layers)
        + f"s AS (SELECT t.*, {score} AS score FROM {top_layers[-1][0] if top_layers else 't'} t) "
        f"SELECT s.*, {_band_case(compiled, 's.score')} AS band, {klass} AS lead_class, "
        f"{reason} AS class_reason{final_cols} FROM s"
    )


def _scored_rows_as_of_sql(compiled: CompiledModel, as_of: str) -> str:
    """`scored_rows_sql` over the leads of the `as_of` SELECT, each scored at its own time (see there): the same
    rule columns, sums, band and class, with `now` read per lead (`pop.as_of` in c0, `l.as_of` above it)."""
    compiled.p("window_days", int(compiled.model.engagement_window_days))
    sig_cte = "sig AS (SELECT NULL::uuid AS lead_id WHERE false)"
    if compiled.signal_columns:
        compiled.p("types", sorted(set(compiled.signal_types)))
        sig_cte = (
            "sig AS (SELECT s.lead_id, " + ", ".join(compiled.signal_columns) + " FROM leads_signal s "
            "JOIN pop ON pop.lead_id = s.lead_id "
            "WHERE s.tenant_id = %(tenant)s AND s.type = ANY(%(types)s) "
            "AND s.occurred_at >= pop.as_of - make_interval(days => %(window_days)s) AND s.occurred_at <= pop.as_of "
            "GROUP BY s.lead_id)"
        )
    rule_cols = ", ".join(f"{expr.replace('%(now)s', 'l.as_of')} AS r{r.pk}"
                          for r, expr in zip(compiled.rules, compiled.rule_columns, strict=True))
    klass, _reason = _class_case(compiled, "s")
    fit = _sum(compiled, FIT_CATEGORIES)
    eng = _sum(compiled, ENGAGEMENT_CATEGORIES)
    sig_cols = "".join(f", sig.n{r.pk}" for r in compiled.rules if r.operator == Operator.SIGNAL)
    group_cols = "".join(", " + g.replace("%(now)s", "pop.as_of") for g in compiled.group_columns)
    return (
        f"WITH pop AS ({as_of}), {sig_cte}, "
        f"c0 AS (SELECT {LEAD_COLUMNS}, pop.as_of{sig_cols}{group_cols} "
        "FROM leads_lead l JOIN pop ON pop.lead_id = l.id LEFT JOIN sig ON sig.lead_id = l.id "
        "WHERE l.tenant_id = %(tenant)s OFFSET 0), "
        f"c AS (SELECT l.id, {_dq_columns(compiled).replace('%(now)s', 'l.as_of')}"
        + (", " + rule_cols if rule_cols else "") + " FROM c0 l OFFSET 0), "
        f"t AS (SELECT c.*, ({fit}) AS fit, ({eng}) AS eng FROM c OFFSET 0), "
        "s AS (SELECT t.*, GREATEST(0, LEAST(100, t.fit + t.eng)) AS score FROM t) "
        f"SELECT s.id, s.score, s.fit, s.eng, s.dq, {_band_case(compiled, 's.score')} AS band, {klass} AS lead_class "
        "FROM s"
    )
