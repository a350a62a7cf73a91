"""Territories: which one takes a lead, comparing countries as ISO codes and regions as NA/LATAM/EMEA/APAC."""
from __future__ import annotations

import functools
from typing import Any

from leads.countries import country_code, country_sales_regions, region_code
from leads.models import Lead

from .models import Territory


def _value(source: Any, name: str):
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


@functools.lru_cache(maxsize=1024)
def _country_keys(values: tuple[str, ...]) -> frozenset[str]:
    """A territory's countries as ISO codes (a text that is no country stays, lower-cased)."""
    return frozenset(country_code(v) or v.strip().lower() for v in values)


@functools.lru_cache(maxsize=1024)
def _region_keys(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(region_code(v) or v.strip().upper() for v in values)


def territory_match(territories: list[Territory], source: Any) -> Territory | None:
    """The first active territory whose countries/regions, industries and size range fit the lead.

    Countries compare as ISO alpha-2 codes and regions as NA/LATAM/EMEA/APAC, however either side was
    typed ("United States" in a territory takes a lead of "US"). The lead's region is its country's; a
    region sent with the lead (`attributes.region`) counts only when its country is blank or unknown."""
    raw_country = str(_value(source, "country") or "").strip()
    country = country_code(raw_country) or raw_country.lower()
    industry = (_value(source, "industry") or "").strip().lower()
    size = _value(source, "company_size")
    attributes = _value(source, "attributes") or {}
    sent_region = str(attributes.get("region", "")).strip() if isinstance(attributes, dict) else ""
    regions = set(country_sales_regions(country))
    if not regions and sent_region:
        regions = {region_code(sent_region) or sent_region.upper()}
    for t in territories:
        if t.countries and country not in _country_keys(tuple(str(c) for c in t.countries)):
            continue
        if t.regions and not regions & _region_keys(tuple(str(r) for r in t.regions)):
            continue
        if t.industries and industry not in {str(i).strip().lower() for i in t.industries}:
            continue
        if t.company_size_min is not None and (size is None or int(size) < t.company_size_min):
            continue
        if t.company_size_max is not None and (size is None or int(size) > t.company_size_max):
            continue
        return t
    return None


def lead_facts(lead: Lead) -> str:
    """"country US, industry Software, 250 employees": what territories compare, for a readable why."""
    facts = [f"country {lead.country or 'blank'}"]
    if lead.industry:
        facts.append(f"industry {lead.industry}")
    if lead.company_size is not None:
        facts.append(f"{lead.company_size} employees")
    return ", ".join(facts)
