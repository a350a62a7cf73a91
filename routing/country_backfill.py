"""Rewrites stored routing configuration to canonical countries and regions, tenant by tenant.

Used by the data migration `routing.0005_canonical_countries` and re-runnable (a second run changes
nothing): territories' countries become ISO alpha-2 codes and their regions NA/LATAM/EMEA/APAC, and
routing rules' country conditions (equals, in_list, not_in_list) compare codes. A value that is no
country or region is kept as it is, for the admin form to point out on the next save. Territories and
rules are a few rows per tenant, so each changed row is written by its primary key.
"""
from __future__ import annotations

import json

from leads.countries import country_code, country_values_canonical, region_code

from .conditions import COUNTRY_FIELDS, COUNTRY_OPERATORS


def _regions(values: list) -> list:
    out: list = []
    for value in values:
        value = (region_code(value) or value) if isinstance(value, str) else value
        if value not in out:
            out.append(value)
    return out


def conditions_countries_canonical(conditions):
    """A rule's conditions with country values as codes (unknown values and other conditions untouched)."""
    if not isinstance(conditions, list):
        return conditions
    out = []
    for condition in conditions:
        if (isinstance(condition, dict) and condition.get("field") in COUNTRY_FIELDS
                and condition.get("operator") in COUNTRY_OPERATORS):
            value = condition.get("value")
            if isinstance(value, list):
                condition = {**condition, "value": country_values_canonical(value)}
            elif isinstance(value, str) and country_code(value):
                condition = {**condition, "value": country_code(value)}
        out.append(condition)
    return out


def routing_countries_canonicalize(*, cursor, tenant_id: int) -> int:
    """One tenant's territories and routing rules. Returns the rows changed."""
    changed = 0
    cursor.execute("SELECT id, countries, regions FROM routing_territory WHERE tenant_id = %s ORDER BY id",
                   [tenant_id])
    for pk, countries, regions in cursor.fetchall():
        countries, regions = _decoded(countries), _decoded(regions)
        new_countries = country_values_canonical(countries) if isinstance(countries, list) else countries
        new_regions = _regions(regions) if isinstance(regions, list) else regions
        if (new_countries, new_regions) != (countries, regions):
            cursor.execute("UPDATE routing_territory SET countries = %s::jsonb, regions = %s::jsonb "
                           "WHERE tenant_id = %s AND id = %s",
                           [json.dumps(new_countries), json.dumps(new_regions), tenant_id, pk])
            changed += 1
    cursor.execute("SELECT id, conditions FROM routing_routingrule WHERE tenant_id = %s ORDER BY id", [tenant_id])
    for pk, conditions in cursor.fetchall():
        conditions = _decoded(conditions)
        new = conditions_countries_canonical(conditions)
        if new != conditions:
            cursor.execute("UPDATE routing_routingrule SET conditions = %s::jsonb WHERE tenant_id = %s AND id = %s",
                           [json.dumps(new), tenant_id, pk])
            changed += 1
    return changed


def _decoded(value):
    return json.loads(value) if isinstance(value, str) else value


def routing_canonicalize_all(*, connection) -> int:
    """Every tenant, one after the other."""
    changed = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenancy_tenant ORDER BY id")
        for (tenant_id,) in cursor.fetchall():
            changed += routing_countries_canonicalize(cursor=cursor, tenant_id=tenant_id)
    return changed
