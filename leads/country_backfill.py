"""Rewrites stored leads to canonical countries (ISO alpha-2) and sales regions, tenant by tenant, in SQL.

Used by the data migration `leads.0008_canonical_countries` (and re-runnable any time: a second run
changes nothing). Per tenant, the distinct country texts that are not yet a code are read (a few
hundred at most, however many leads), canonicalised by `leads.countries`, and written back with one
`UPDATE … FROM (VALUES …)` per chunk of mapping: never a Python loop over lead rows. A text that is no
country leaves `country` blank and is kept in `attributes.country_as_sent`, as intake does.
A custom `attributes.region` ("Europe", "emea") becomes NA, LATAM, EMEA or APAC the same way.
"""
from __future__ import annotations

from .countries import (
    COUNTRY_AS_SENT_ATTRIBUTE,
    SALES_REGION_CODES,
    country_code,
    iso_codes,
    region_code,
)

CHUNK = 500


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _values_sql(rows: list[tuple[str, str]]) -> tuple[str, list[str]]:
    return ", ".join(["(%s, %s)"] * len(rows)), [value for row in rows for value in row]


def lead_countries_canonicalize(*, cursor, tenant_id: int) -> int:
    """One tenant's leads: countries as codes (unknown ones blank, kept as sent). Returns rows changed."""
    codes = iso_codes()
    cursor.execute(
        "SELECT DISTINCT country FROM leads_lead WHERE tenant_id = %s AND country <> '' "
        "AND NOT (country = ANY(%s))", [tenant_id, codes])
    mapping = [(raw, country_code(raw)) for (raw,) in cursor.fetchall()]
    changed = 0
    for chunk in _chunks(mapping):
        values, params = _values_sql(chunk)
        cursor.execute(
            "UPDATE leads_lead AS l SET country = m.code, attributes = CASE "
            " WHEN m.code = '' AND NOT (COALESCE(l.attributes, '{}'::jsonb) ? %s) "
            " THEN COALESCE(l.attributes, '{}'::jsonb) || jsonb_build_object(%s, m.raw) "
            " ELSE l.attributes END "
            f"FROM (VALUES {values}) AS m(raw, code) "
            "WHERE l.tenant_id = %s AND l.country = m.raw",
            [COUNTRY_AS_SENT_ATTRIBUTE, COUNTRY_AS_SENT_ATTRIBUTE, *params, tenant_id])
        changed += cursor.rowcount
    return changed


def lead_regions_canonicalize(*, cursor, tenant_id: int) -> int:
    """One tenant's leads: a recognised `attributes.region` as NA/LATAM/EMEA/APAC. Returns rows changed."""
    cursor.execute(
        "SELECT DISTINCT attributes ->> 'region' FROM leads_lead WHERE tenant_id = %s "
        "AND jsonb_typeof(attributes -> 'region') = 'string' AND NOT ((attributes ->> 'region') = ANY(%s))",
        [tenant_id, list(SALES_REGION_CODES)])
    mapping = [(raw, region_code(raw)) for (raw,) in cursor.fetchall() if region_code(raw)]
    changed = 0
    for chunk in _chunks(mapping):
        values, params = _values_sql(chunk)
        cursor.execute(
            "UPDATE leads_lead AS l SET attributes = jsonb_set(l.attributes, '{region}', to_jsonb(m.code)) "
            f"FROM (VALUES {values}) AS m(raw, code) "
            "WHERE l.tenant_id = %s AND jsonb_typeof(l.attributes -> 'region') = 'string' "
            "AND l.attributes ->> 'region' = m.raw",
            [*params, tenant_id])
        changed += cursor.rowcount
    return changed


def leads_canonicalize_all(*, connection) -> int:
    """Every tenant, one after the other (each tenant's statements touch that tenant's rows only)."""
    changed = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tenancy_tenant ORDER BY id")
        for (tenant_id,) in cursor.fetchall():
            changed += lead_countries_canonicalize(cursor=cursor, tenant_id=tenant_id)
            changed += lead_regions_canonicalize(cursor=cursor, tenant_id=tenant_id)
    return changed
