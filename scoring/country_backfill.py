"""Rewrites stored scoring rules that compare countries to ISO alpha-2 codes, tenant by tenant.

Used by the data migration `scoring.0005_canonical_countries` and re-runnable (a second run changes
nothing). The engine already compares countries as codes (`scoring.engine.country_match_values`), so
no score changes: the rules just read the way leads are stored. A value that is no country is kept.
"""
from __future__ import annotations

import json

from leads.countries import country_code, country_values_canonical

from .engine import COUNTRY_FIELDS

OPERATORS = ("equals", "in_list")


def rule_value_countries_canonical(value):
    if isinstance(value, list):
        return country_values_canonical(value)
    if isinstance(value, str) and country_code(value):
        return country_code(value)
    return value


def scoring_countries_canonicalize(*, cursor, tenant_id: int) -> int:
    """One tenant's country rules (every model version). Returns the rows changed."""
    cursor.execute("SELECT id, value FROM scoring_scoringrule WHERE tenant_id = %s AND field = ANY(%s) "
                   "AND operator = ANY(%s) ORDER BY id", [tenant_id, sorted(COUNTRY_FIELDS), list(OPERATORS)])
    changed = 0
    for pk, value in cursor.fetchall():
        value = json.loads(value) if isinstance(value, str) else value
        new = rule_value_countries_canonical(value)
        if new != value:
            cursor.execute("UPDATE scoring_scoringrule SET value = %s::jsonb WHERE tenant_id = %s AND id = %s",
                           [json.dumps(new), tenant_id, pk])
            changed += 1
    return changed


def scoring_canonicalize_all(*, connection) -> int:
    """Every tenant, one after the other."""
    changed = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenancy_tenant ORDER BY id")
        for (tenant_id,) in cursor.fetchall():
            changed += scoring_countries_canonicalize(cursor=cursor, tenant_id=tenant_id)
    return changed
