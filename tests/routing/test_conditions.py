"""Routing conditions: field-level validation messages and evaluation against leads and plain values."""
from __future__ import annotations

import pytest

from routing.conditions import conditions_errors, conditions_match
from tests.support.routing import lead

pytestmark = pytest.mark.django_db


def c(field, operator, value=None):
    return {"field": field, "operator": operator, "value": value}


def test_valid_conditions_have_no_errors():
    assert conditions_errors([
        c("country", "in_list", ["US", "Canada"]), c("score", "range", {"min": 80}), c("is_hot", "is_true"),
        c("job_title", "regex", r"^(vp|head)\b"), c("attributes.region", "equals", "EMEA"),
        c("campaign", "contains", "spring"), c("product_interest", "not_blank"),
        c("industry", "not_in_list", ["Education"]),
    ]) == {}
    assert conditions_errors([]) == {} and conditions_errors(None) == {}


@pytest.mark.parametrize(("condition", "message"), [
    (c("shoe_size", "equals", "9"), "Condition 1: unknown field 'shoe_size'"),
    (c("country", "looks_like", "US"), "Condition 1: unknown operator 'looks_like'"),
    (c("job_title", "regex", "(vp"), "Condition 1: invalid regular expression"),
    (c("score", "range", {"min": "eighty"}), "Condition 1: range bounds must be numbers."),
    (c("score", "range", {"min": 90, "max": 10}), "Condition 1: range minimum is above its maximum."),
    (c("score", "range", 80), "Condition 1: a range needs"),
    (c("score", "equals", "lots"), "the value must be a number"),
    (c("country", "in_list", []), "needs a non-empty list of values."),
    (c("country", "equals", ""), "needs a value."),
    (c("is_hot", "contains", "x"), "operator 'contains' does not apply to the boolean field 'is_hot'"),
    (c("attributes.bad key", "equals", "x"), "unknown field 'attributes.bad key'"),
    ("score > 80", "must be an object"),
])
def test_invalid_conditions_get_a_field_level_message(condition, message):
    errors = conditions_errors([condition])
    assert list(errors) == ["conditions"]
    assert any(message in m for m in errors["conditions"]), errors


def test_conditions_must_be_a_list():
    assert conditions_errors({"field": "country"}) == {
        "conditions": ["Conditions must be a list of {field, operator, value} objects."]}


def test_each_operator_against_a_lead(tenant):
    subject = lead(tenant, country="United States", industry="Software", job_title="VP Sales", company_size=250,
                   score=85, band="sql", is_hot=True, campaign="Spring Launch 2026", product_interest="",
                   attributes={"region": "NA", "seats": "40"})
    holds = [
        c("country", "equals", "united states"), c("country", "in_list", ["US", "United States"]),
        c("industry", "not_in_list", ["Education"]), c("campaign", "contains", "launch"),
        c("job_title", "regex", r"^vp\b"), c("score", "range", {"min": 80, "max": 100}),
        c("company_size", "range", {"max": 500}), c("is_hot", "is_true"), c("country", "not_blank"),
        c("attributes.region", "equals", "na"), c("attributes.seats", "range", {"min": 10}),
        c("band", "in_list", ["sal", "sql"]), c("score", "equals", 85),
    ]
    for condition in holds:
        assert conditions_match(subject, [condition])[0], condition
    fails = [
        c("country", "equals", "Germany"), c("industry", "not_in_list", ["software"]),
        c("product_interest", "not_blank"), c("score", "range", {"min": 90}), c("attributes.region", "equals", "EMEA"),
        c("attributes.missing", "not_blank"), c("fit_score", "range", {"min": 0}),
    ]
    for condition in fails:
        assert not conditions_match(subject, [condition])[0], condition


def test_all_conditions_must_hold_and_the_why_names_the_failing_one(tenant):
    subject = lead(tenant, country="Germany", score=42)
    ok, why = conditions_match(subject, [c("country", "equals", "Germany"), c("score", "range", {"min": 80})])
    assert not ok
    assert why == "score >= 80 does not hold (score is 42)"
    ok, why = conditions_match(subject, [c("country", "equals", "Germany")])
    assert ok and "country = Germany" in why
    assert conditions_match(subject, []) == (True, "no conditions: matches every lead")


def test_conditions_match_hypothetical_values_without_a_lead():
    values = {"source": "event", "score": "81", "attributes": {"booth": "A4"}}
    assert conditions_match(values, [c("source", "equals", "event"), c("score", "range", {"min": 80}),
                                     c("attributes.booth", "equals", "a4")])[0]
    ok, why = conditions_match({}, [c("country", "equals", "US")])
    assert not ok and "country is blank" in why


def test_invalid_conditions_never_match():
    ok, why = conditions_match({"country": "US"}, [c("country", "regex", "(")])
    assert not ok and why.startswith("invalid conditions")
