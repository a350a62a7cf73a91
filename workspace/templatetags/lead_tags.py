"""Template filters of the lead pages: a country code shown by its name."""
from __future__ import annotations

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
