"""Routing rule conditions: validation (field-level messages) and fast evaluation against one lead.

A condition is `{"field", "operator", "value"}`; a rule's conditions all must hold (an empty
list matches every lead). Conditions are evaluated in Python, one lead at a time: a rule set is
small, and compiling it once per routing run (regexes precompiled, lists lower-cased into sets)
makes each check a few dictionary look-ups.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from leads.countries import country_code

TEXT, NUMBER, BOOLEAN = "text", "number", "boolean"

# Lead fields a routing condition may read, with their type. `attributes.<key>` reads a custom
# form field (text, number or boolean, whatever the form sent).
FIELDS: dict[str, str] = {
    "country": TEXT, "industry": TEXT, "company": TEXT, "company_size": NUMBER, "job_title": TEXT,
    "company_domain": TEXT, "email": TEXT, "source": TEXT, "campaign": TEXT, "utm_source": TEXT,
    "utm_medium": TEXT, "utm_campaign": TEXT, "utm_term": TEXT, "utm_content": TEXT,
    "product_interest": TEXT, "score": NUMBER, "fit_score": NUMBER, "engagement_score": NUMBER,
    "band": TEXT, "lead_class": TEXT, "is_hot": BOOLEAN, "stage": TEXT, "status": TEXT,
    "is_personal_email": BOOLEAN, "account_score": NUMBER,
}
# Fields read from the lead's account rather than the lead row: the routing engine supplies them
# (`strategies.account_scores_attach` for a batch, one look-up per account otherwise).
ACCOUNT_FIELDS = frozenset({"account_score"})
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
OPERATORS = ("equals", "in_list", "not_in_list", "contains", "regex", "range", "is_true", "not_blank")
OPERATORS_BY_TYPE = {
    TEXT: {"equals", "in_list", "not_in_list", "contains", "regex", "not_blank", "range"},
    NUMBER: {"equals", "in_list", "not_in_list", "range", "not_blank"},
    BOOLEAN: {"is_true", "equals", "not_blank"},
}
VALUELESS = {"is_true", "not_blank"}
# Fields holding an ISO 3166-1 alpha-2 code: their values compare as codes ("United States" = "US").
COUNTRY_FIELDS = frozenset({"country"})
COUNTRY_OPERATORS = frozenset({"equals", "in_list", "not_in_list"})


def field_type(name: str) -> str | None:
    """The type of a condition field; None when the field is unknown. Attributes are `any`."""
    if name.startswith("attributes."):
        return "any" if ATTRIBUTE_KEY.match(name.split(".", 1)[1]) else None
    return FIELDS.get(name)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_number(value) -> float | None:
    if _number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _condition_errors(condition: Any) -> list[str]:
    if not isinstance(condition, dict):
        return ["must be an object with field, operator and value."]
    field, operator, value = condition.get("field"), condition.get("operator"), condition.get("value")
    kind = field_type(field) if isinstance(field, str) else None
    if kind is None:
        return [f"unknown field '{field}'. Use one of {', '.join(sorted(FIELDS))} or attributes.<key>."]
    if operator not in OPERATORS:
        return [f"unknown operator '{operator}'. Use one of {', '.join(OPERATORS)}."]
    if kind != "any" and operator not in OPERATORS_BY_TYPE[kind]:
        return [f"operator '{operator}' does not apply to the {kind} field '{field}'."]
    if operator in VALUELESS:
        return []
    if operator == "range":
        if not isinstance(value, dict) or not ({"min", "max"} & set(value)) or set(value) - {"min", "max"}:
            return ['a range needs {"min": number, "max": number} (either may be left out).']
        bounds = {k: v for k, v in value.items() if v is not None}
        if not all(_number(v) for v in bounds.values()):
            return ["range bounds must be numbers."]
        if len(bounds) == 2 and bounds["min"] > bounds["max"]:
            return ["range minimum is above its maximum."]
        return []
    if operator in ("in_list", "not_in_list"):
        if not isinstance(value, list) or not value or not all(isinstance(v, (str, int, float)) for v in value):
            return ["needs a non-empty list of values."]
        if kind == NUMBER and not all(_as_number(v) is not None for v in value):
            return [f"'{field}' is a number: every list value must be a number."]
        return _country_errors(field, operator, value)
    if operator == "regex":
        if not isinstance(value, str) or not value:
            return ["needs a regular expression."]
        try:
            re.compile(value)
        except re.error as exc:
            return [f"invalid regular expression: {exc}."]
        return []
    if isinstance(value, (dict, list)) or value is None or (isinstance(value, str) and not value.strip()):
        return ["needs a value."]
    if kind == NUMBER and _as_number(value) is None:
        return [f"'{field}' is a number: the value must be a number."]
    return _country_errors(field, operator, value)


def _country_errors(field: str, operator: str, value: Any) -> list[str]:
    if field not in COUNTRY_FIELDS or operator not in COUNTRY_OPERATORS:
        return []
    unknown = [str(v) for v in (value if isinstance(value, list) else [value]) if not country_code(str(v))]
    if unknown:
        return [f"unknown country {', '.join(repr(v) for v in unknown)}: use a country name or its ISO code, "
                "e.g. Germany or DE."]
    return []


def conditions_canonicalize(conditions: Any) -> Any:
    """The conditions with every country value as its ISO code (["United States", "USA"] → ["US"]), the
    form they are saved in; anything not understood is returned unchanged for validation to report."""
    if not isinstance(conditions, list):
        return conditions
    out = []
    for condition in conditions:
        if (isinstance(condition, dict) and condition.get("field") in COUNTRY_FIELDS
                and condition.get("operator") in COUNTRY_OPERATORS):
            value = condition.get("value")
            if isinstance(value, list) and value and all(country_code(str(v)) for v in value):
                condition = {**condition, "value": list(dict.fromkeys(country_code(str(v)) for v in value))}
            elif isinstance(value, str) and country_code(value):
                condition = {**condition, "value": country_code(value)}
        out.append(condition)
    return out


def conditions_errors(conditions: Any) -> dict[str, list[str]]:
    """Field-level problems of a rule's conditions (empty when valid), all under "conditions"."""
    if conditions in (None, ""):
        return {}
    if not isinstance(conditions, list):
        return {"conditions": ["Conditions must be a list of {field, operator, value} objects."]}
    messages = [f"Condition {i}: {m}" for i, c in enumerate(conditions, 1) for m in _condition_errors(c)]
    return {"conditions": messages} if messages else {}


# --- evaluation ----------------------------------------------------------------------------------

def _read(source: Any, field: str) -> Any:
    """A field of a Lead, or of a dict of (hypothetical) lead values."""
    if isinstance(source, Mapping):
        if field.startswith("attributes."):
            key = field.split(".", 1)[1]
            attributes = source.get("attributes") or {}
            return attributes.get(key, source.get(field)) if isinstance(attributes, Mapping) else source.get(field)
        return source.get(field)
    if field.startswith("attributes."):
        return (getattr(source, "attributes", None) or {}).get(field.split(".", 1)[1])
    return getattr(source, field, None)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def _blank(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _describe(condition: dict) -> str:
    field, operator, value = condition["field"], condition["operator"], condition.get("value")
    if operator == "range":
        low, high = value.get("min"), value.get("max")
        if low is not None and high is not None:
            return f"{field} between {low} and {high}"
        return f"{field} >= {low}" if low is not None else f"{field} <= {high}"
    if operator in VALUELESS:
        return f"{field} {'is true' if operator == 'is_true' else 'is not blank'}"
    label = {"equals": "=", "in_list": "in", "not_in_list": "not in", "contains": "contains",
             "regex": "matches"}[operator]
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return f"{field} {label} {shown}"


def _predicate(condition: dict) -> Callable[[Any], bool]:
    field, operator, value = condition["field"], condition["operator"], condition.get("value")
    kind = field_type(field)
    numeric = kind == NUMBER
    if operator == "is_true":
        return lambda v: v is True or _text(v) in ("true", "1", "yes", "on")
    if operator == "not_blank":
        return lambda v: not _blank(v)
    if operator == "range":
        low, high = value.get("min"), value.get("max")

        def in_range(v) -> bool:
            number = _as_number(v)
            return number is not None and (low is None or number >= low) and (high is None or number <= high)
        return in_range
    if operator == "regex":
        pattern = re.compile(value, re.IGNORECASE)
        return lambda v: v is not None and pattern.search(_text(v) if isinstance(v, bool) else str(v)) is not None
    if operator == "contains":
        needle = _text(value)
        return lambda v: needle in _text(v)
    if numeric:
        numbers = {_as_number(x) for x in (value if isinstance(value, list) else [value])}
        if operator == "not_in_list":
            return lambda v: _as_number(v) not in numbers
        return lambda v: _as_number(v) in numbers
    if field in COUNTRY_FIELDS:
        codes = {country_code(str(x)) or _text(x) for x in (value if isinstance(value, list) else [value])}
        if operator == "not_in_list":
            return lambda v: (country_code(v) or _text(v)) not in codes
        return lambda v: not _blank(v) and (country_code(v) or _text(v)) in codes
    texts = {_text(x) for x in (value if isinstance(value, list) else [value])}
    if operator == "not_in_list":
        return lambda v: _text(v) not in texts
    return lambda v: not _blank(v) and _text(v) in texts


@dataclass(frozen=True)
class CompiledCondition:
    field: str
    test: Callable[[Any], bool]
    description: str


@lru_cache(maxsize=4096)
def _compile_cached(key: str) -> tuple[CompiledCondition, ...]:
    conditions = json.loads(key)
    return tuple(CompiledCondition(field=c["field"], test=_predicate(c), description=_describe(c)) for c in conditions)


def conditions_compile(conditions: list | None) -> tuple[CompiledCondition, ...]:
    """Compiled predicates of valid conditions (cached by their JSON: compiling is paid once per rule)."""
    if not conditions:
        return ()
    errors = conditions_errors(conditions)
    if errors:
        raise ValueError("; ".join(errors["conditions"]))
    return _compile_cached(json.dumps(conditions, sort_keys=True, default=str))


def compiled_match(source: Any, compiled: tuple[CompiledCondition, ...], facts: Mapping | None = None
                   ) -> tuple[bool, str]:
    """(all hold, why): `why` names the first condition that failed, with the lead's value. `facts` holds
    values read elsewhere (the account's score), which take precedence over the source's."""
    for condition in compiled:
        value = facts[condition.field] if facts and condition.field in facts else _read(source, condition.field)
        if not condition.test(value):
            shown = "blank" if _blank(value) else repr(value)
            return False, f"{condition.description} does not hold ({condition.field} is {shown})"
    if not compiled:
        return True, "no conditions: matches every lead"
    return True, "all conditions hold: " + "; ".join(c.description for c in compiled)


def conditions_match(lead_or_values: Any, conditions: list | None) -> tuple[bool, str]:
    """Whether a lead (or a dict of lead values) meets every condition, and a readable why."""
    try:
        compiled = conditions_compile(conditions)
    except ValueError as exc:
        return False, f"invalid conditions: {exc}"
    return compiled_match(lead_or_values, compiled)
