"""Validation of scoring rules and bands: every bad input gets a message on its field (PostgreSQL judges regexes)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.tenancy.context import tenant_scope
from leads.models import SignalType
from leads.signal_catalog import BUILTIN_SIGNAL_NAMES
from scoring.defaults import BANDS
from scoring.models import ScoreBand, ScoringModel, ScoringRule
from scoring.validation import bands_errors, rule_errors

pytestmark = pytest.mark.django_db

TYPES = BUILTIN_SIGNAL_NAMES


def rule(**kw) -> ScoringRule:
    values = {"name": "r", "category": "firmographic", "field": "industry", "operator": "equals",
              "value": "Software", "points": 10, "signal_type": "", "cap": None, "once_per_days": None}
    values.update(kw)
    return ScoringRule(**values)


def signal_rule(**kw) -> ScoringRule:
    return rule(**{"category": "behavioral", "field": "", "operator": "signal", "value": None,
                   "signal_type": "demo_request", **kw})


def band(key, lo, hi) -> ScoreBand:
    return ScoreBand(key=key, name=key.title(), min_score=lo, max_score=hi)


DEFAULT_BANDS = [band(key, lo, hi) for key, _name, lo, hi, _action, _auto in BANDS]


@pytest.mark.parametrize("good", [
    rule(),
    rule(operator="in_list", value=["Software", "SaaS"]),
    rule(operator="in_list", value=[]),  # an empty list matches nothing (the competitor list starts empty)
    rule(operator="contains", field="company", value="bank"),
    rule(operator="keywords", field="job_title", value=["vp", "head of"]),
    rule(operator="regex", field="email_domain", value=r"(\.edu|\.ac\.[a-z]{2})$"),
    rule(operator="regex", field="job_title", value=r"(?<!vice )president"),
    rule(operator="range", field="company_size", value={"min": 100, "max": 499}),
    rule(operator="range", field="company_size", value={"min": 500}),
    rule(operator="range", field="days_inactive", value={"min": 30.5, "max": None}),
    rule(operator="range", field="attributes.seats", value={"max": 10}),  # a number typed into a form field
    rule(operator="equals", field="attributes.plan", value="enterprise"),
    rule(operator="is_true", field="is_personal_email", value=None, points=-10),
    rule(operator="not_blank", field="phone", value=""),
    signal_rule(),
    signal_rule(signal_type="unsubscribe", points=-20, cap=20),
    signal_rule(signal_type="email_open", once_per_days=1, cap=0),
], ids=lambda r: f"{r.operator}:{r.field or r.signal_type}")
def test_valid_rules_have_no_errors(good):
    assert rule_errors(good, signal_types=TYPES) == {}


@pytest.mark.parametrize(("bad", "field", "message"), [
    # points and cap
    (rule(points="10"), "points", "whole number"),
    (rule(points=2.5), "points", "whole number"),
    (rule(points=True), "points", "whole number"),
    (signal_rule(cap=-1), "cap", "cannot be below zero"),
    (rule(cap=5), "cap", "Only signal rules take a cap"),
    (rule(once_per_days=7), "once_per_days", "Only signal rules take a cap or a period"),
    # operator and field
    (rule(operator="sounds_like"), "operator", "Unknown operator"),
    (rule(field="favourite_colour"), "field", "Unknown field 'favourite_colour'"),
    (rule(field=""), "field", "Unknown field"),
    (rule(field="attributes."), "field", "Unknown field"),
    (rule(field="attributes.bad key!"), "field", "Unknown field"),
    (rule(field="company_size", operator="keywords", value=["big"]), "operator", "does not apply to the number field"),
    (rule(field="is_personal_email", operator="equals", value="yes"), "operator", "boolean field"),
    (rule(field="job_title", operator="is_true", value=None), "operator", "text field"),
    (rule(signal_type="demo_request"), "signal_type", "Only signal rules take a signal type"),
    # signal rules
    (signal_rule(signal_type=""), "signal_type", "needs a signal type"),
    (signal_rule(signal_type="carrier_pigeon"), "signal_type", "Unknown signal type 'carrier_pigeon'"),
    (signal_rule(field="job_title"), "field", "do not read a lead field"),
    # values by operator
    (rule(operator="is_true", field="marketing_consent", value="yes"), "value", "takes no value"),
    (rule(operator="not_blank", field="phone", value=["x"]), "value", "takes no value"),
    (rule(value=""), "value", "Give a text value"),
    (rule(value="   "), "value", "Give a text value"),
    (rule(value=["Software"]), "value", "Give a text value"),
    (rule(operator="contains", value=None), "value", "Give a text value"),
    (rule(operator="in_list", value="Software"), "value", "Give a list of texts"),
    (rule(operator="in_list", value=["ok", 3]), "value", "Give a list of texts"),
    (rule(operator="keywords", field="job_title", value=[]), "value", "at least one keyword"),
    (rule(operator="keywords", field="job_title", value=["  ", ""]), "value", "at least one keyword"),
    (rule(operator="regex", value=""), "value", "Give a regular expression"),
    (rule(operator="regex", value=["a"]), "value", "Give a regular expression"),
    (rule(operator="regex", value="(unclosed"), "value", "Invalid regular expression"),
    (rule(operator="regex", value="[z-a]"), "value", "Invalid regular expression"),
    (rule(operator="range", field="company_size", value=[1, 2]), "value", 'Give {"min"'),
    (rule(operator="range", field="company_size", value={}), "value", 'Give {"min"'),
    (rule(operator="range", field="company_size", value={"min": 1, "top": 2}), "value", 'Give {"min"'),
    (rule(operator="range", field="company_size", value={"min": "100"}), "value", "must be numbers"),
    (rule(operator="range", field="company_size", value={"min": True}), "value", "must be numbers"),
    (rule(operator="range", field="company_size", value={"min": 500, "max": 100}), "value", "minimum is above"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_rule_gets_a_message_on_its_field(bad, field, message):
    errors = rule_errors(bad, signal_types=TYPES)
    assert any(message in m for m in errors.get(field, [])), errors


@pytest.mark.parametrize(("pattern", "reason"), [("a{1,300}", "invalid repetition count"),
                                                  ("(?P<word>vp)", "invalid embedded option")])
def test_regex_python_accepts_but_postgresql_refuses_is_caught(pattern, reason):
    import re

    re.compile(pattern)  # Python is happy with it ...
    errors = rule_errors(rule(operator="regex", value=pattern), signal_types=TYPES)
    assert errors["value"][0].startswith("Invalid regular expression")  # ... PostgreSQL is not
    assert reason in errors["value"][0]


def test_regex_check_leaves_the_surrounding_transaction_usable(tenant):
    rule_errors(rule(operator="regex", value="a{1,300}"), signal_types=TYPES)
    assert ScoringModel.objects.unscoped().filter(tenant=tenant).count() == 0  # no "transaction aborted"


def test_several_problems_are_all_reported():
    errors = rule_errors(rule(points="x", cap=-2, field="nope"), signal_types=TYPES)
    assert set(errors) == {"points", "cap", "field"}


# --- model clean(): the tenant's catalog ---------------------------------------------------------------


@pytest.fixture
def model(tenant):
    return ScoringModel.objects.unscoped().create(tenant=tenant, version=1)


def test_rule_clean_accepts_the_tenants_own_signal_types_only(in_tenant, tenant, other_tenant, model):
    SignalType.objects.unscoped().create(tenant=tenant, name="trade_show_visit")
    with tenant_scope(other_tenant):  # written as that tenant: row-level security refuses it from this one
        SignalType.objects.create(tenant=other_tenant, name="podcast_listen")
    signal_rule(tenant=tenant, model=model, signal_type="trade_show_visit").full_clean()
    with pytest.raises(ValidationError) as exc:
        signal_rule(tenant=tenant, model=model, signal_type="podcast_listen").full_clean()
    assert "Unknown signal type 'podcast_listen'" in exc.value.message_dict["signal_type"][0]


def test_rule_clean_finds_the_tenant_through_its_model(tenant, model):
    SignalType.objects.unscoped().create(tenant=tenant, name="trade_show_visit")
    signal_rule(model=model, signal_type="trade_show_visit").clean()  # a new inline row has no tenant yet


def test_rule_clean_reports_missing_points_once(in_tenant, tenant, model):
    with pytest.raises(ValidationError) as exc:
        rule(tenant=tenant, model=model, points=None).full_clean()
    assert exc.value.message_dict["points"] == ["This field cannot be null."]


def test_band_clean_puts_range_problems_on_max_score(in_tenant, tenant, model):
    with pytest.raises(ValidationError) as exc:
        ScoreBand(tenant=tenant, model=model, key="hot", name="Hot", min_score=90, max_score=120).full_clean()
    assert "at most" in exc.value.message_dict["max_score"][0]
    with pytest.raises(ValidationError) as exc:
        ScoreBand(tenant=tenant, model=model, key="hot", name="Hot", min_score=90, max_score=80).full_clean()
    assert "ends below where it starts" in exc.value.message_dict["max_score"][0]


# --- bands ---------------------------------------------------------------------------------------------


def test_default_bands_are_valid():
    assert bands_errors(DEFAULT_BANDS) == []
    assert bands_errors([band("all", 0, 100)]) == []


@pytest.mark.parametrize(("bands", "message"), [
    ([], "Define at least one band."),
    ([band("cold", 0, 20), band("warm", 25, 100)], "Scores 21–24 fall in no band (between Cold and Warm)."),
    ([band("cold", 0, 30), band("warm", 21, 100)], "Cold (0–30) overlaps Warm (21–100)."),
    ([band("cold", 0, 50), band("warm", 0, 100)], "overlaps"),
    ([band("cold", 5, 100)], "The lowest band must start at 0 (it starts at 5)."),
    ([band("cold", 0, 90)], "The highest band must end at 100 (it ends at 90)."),
    ([band("cold", 0, 50), band("cold", 51, 100)], "Band keys must be unique."),
    ([band("cold", 0, 50), band("odd", 60, 55), band("warm", 51, 100)], "Odd: min 60 is above max 55."),
])
def test_bad_band_sets_are_refused(bands, message):
    problems = bands_errors(bands)
    assert any(message in p for p in problems), problems


def test_band_order_does_not_matter():
    assert bands_errors(list(reversed(DEFAULT_BANDS))) == []
