"""Template filters of the lead pages: a country code shown by its name, an amount with its thousands."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from leads.countries import country_name

register = template.Library()


@register.filter
def country(code: str) -> str:
    """"US" → "United States (US)"; a blank or unknown value as it is."""
    if not code:
        return ""
    name = country_name(code)
    return f"{name} ({code})" if name and name != code else code


@register.filter
def money(value) -> str:
    """321000 → "321,000.00" (an amount as the dashboards print it); None or not a number as it is."""
    try:
        return f"{Decimal(value):,.2f}"
    except (InvalidOperation, TypeError, ValueError):
        return "" if value is None else str(value)
