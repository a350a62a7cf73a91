"""Validation of scoring rules and bands: field-level messages, used by model clean(), admin and publish."""
from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from leads.countries import country_code, country_codes

from .engine import COUNTRY_FIELDS, OPERATORS_BY_TYPE, field_sql
from .models import Operator

NO_VALUE_OPERATORS = {Operator.IS_TRUE, Operator.NOT_BLANK, Operator.SIGNAL}


def _pg_regex_error(pattern: str) -> str | None:
    """PostgreSQL's own verdict on a regex (its dialect differs from Python's)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~* %s", [pattern])
    except DatabaseError as exc:
        return str(getattr(exc, "pgerror", None) or exc).strip().splitlines()[0]
    return None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rule_value_canonical(rule):
    """The value a rule is saved with: countries of a country rule as ISO alpha-2 codes ("United States",
    "USA" → "US"); any other value, or one with a text that is no country, unchanged."""
    if rule.field not in COUNTRY_FIELDS or rule.operator not in {Operator.EQUALS, Operator.IN_LIST}:
        return rule.value
    if isinstance(rule.value, str) and country_code(rule.value):
        return country_code(rule.value)
    if isinstance(rule.value, list) and all(isinstance(v, str) for v in rule.value):
        codes, unknown = country_codes(rule.value)
        return rule.value if unknown else codes
    return rule.value


def _country_error(rule) -> str | None:
    if rule.field not in COUNTRY_FIELDS or rule.operator not in {Operator.EQUALS, Operator.IN_LIST}:
        return None
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    unknown = [str(v) for v in values if isinstance(v, str) and v.strip() and not country_code(v)]
    if unknown:
        return (f"Unknown country {', '.join(repr(v) for v in unknown)}: use country names or ISO codes, "
                'e.g. ["United States", "CA"].')
    return None


def rule_errors(rule, *, signal_types: Iterable[str]) -> dict[str, list[str]]:
    """Field-level problems of one rule (empty when it is valid)."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not isinstance(rule.points, int) or isinstance(rule.points, bool):
        add("points", "Points must be a whole number.")
    if rule.cap is not None and (not isinstance(rule.cap, int) or rule.cap < 0):
        add("cap", "A cap cannot be below zero.")
    if rule.operator not in Operator.values:
        add("operator", f"Unknown operator '{rule.operator}'.")
        return errors
    if rule.operator == Operator.SIGNAL:
        if not rule.signal_type:
            add("signal_type", "A signal rule needs a signal type.")
        elif rule.signal_type not in set(signal_types):
            add("signal_type", f"Unknown signal type '{rule.signal_type}': use a catalog type or add it as a "
                               "signal type of this tenant first.")
        if rule.field:
            add("field", "Signal rules do not read a lead field; leave it empty.")
        return errors
    if rule.cap is not None or rule.once_per_days is not None:
        add("cap" if rule.cap is not None else "once_per_days", "Only signal rules take a cap or a period.")
    if rule.signal_type:
        add("signal_type", "Only signal rules take a signal type.")
    try:
        _expr, kind, _params = field_sql(rule.field or "")
    except KeyError:
        add("field", f"Unknown field '{rule.field}'.")
        return errors
    if rule.operator not in OPERATORS_BY_TYPE[kind]:
        add("operator", f"'{rule.operator}' does not apply to the {kind} field '{rule.field}'.")
        return errors
    value = rule.value
    if rule.operator in NO_VALUE_OPERATORS:
        if value not in (None, "", [], {}):
            add("value", "This operator takes no value.")
    elif rule.operator in {Operator.EQUALS, Operator.CONTAINS}:
        if not isinstance(value, str) or not value.strip():
            add("value", 'Give a text value, e.g. "software".')
        elif _country_error(rule):
            add("value", _country_error(rule))
    elif rule.operator in {Operator.IN_LIST, Operator.KEYWORDS}:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            add("value", 'Give a list of texts, e.g. ["VP", "Director"].')
        elif rule.operator == Operator.KEYWORDS and not [v for v in value if v.strip()]:
            add("value", "Give at least one keyword.")
        elif _country_error(rule):
            add("value", _country_error(rule))
    elif rule.operator == Operator.REGEX:
        if not isinstance(value, str) or not value:
            add("value", "Give a regular expression.")
        else:
            # The database evaluates the rule, so its regex dialect (\m, \M, \y word boundaries…)
            # is the one that counts, not Python's.
            problem = _pg_regex_error(value)
            if problem:
                add("value", f"Invalid regular expression: {problem}")
    elif rule.operator == Operator.RANGE:
        if not isinstance(value, dict) or set(value) - {"min", "max"} or not value:
            add("value", 'Give {"min": …, "max": …} (either may be left out).')
        elif not all(_number(v) for v in value.values() if v is not None):
            add("value", "Range bounds must be numbers.")
        elif value.get("min") is not None and value.get("max") is not None and value["min"] > value["max"]:
            add("value", "The range minimum is above its maximum.")
    return errors


def bands_errors(bands: list) -> list[str]:
    """Problems of a band set: it must cover 0–100 with no gap and no overlap, keys unique."""
    problems = []
    ordered = sorted(bands, key=lambda b: (b.min_score, b.max_score))
    if not ordered:
        return ["Define at least one band."]
    keys = [b.key for b in ordered]
    if len(set(keys)) != len(keys):
        problems.append("Band keys must be unique.")
    if ordered[0].min_score != 0:
        problems.append(f"The lowest band must start at 0 (it starts at {ordered[0].min_score}).")
    if ordered[-1].max_score != 100:
        problems.append(f"The highest band must end at 100 (it ends at {ordered[-1].max_score}).")
    for band in ordered:
        if band.min_score > band.max_score:
            problems.append(f"{band.name}: min {band.min_score} is above max {band.max_score}.")
    for low, high in zip(ordered, ordered[1:], strict=False):
        if high.min_score <= low.max_score:
            problems.append(f"{low.name} ({low.min_score}–{low.max_score}) overlaps {high.name} "
                            f"({high.min_score}–{high.max_score}).")
        elif high.min_score > low.max_score + 1:
            problems.append(f"Scores {low.max_score + 1}–{high.min_score - 1} fall in no band "
                            f"(between {low.name} and {high.name}).")
    return problems


def raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)
