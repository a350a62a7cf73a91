"""Template filters of the manager pages: which of the offered reps may take a given lead."""
from django import template

from workspace.manager_selectors import reps_for_lead

register = template.Library()


@register.filter
def takers_for(reps, lead):
    """`{{ assignable|takers_for:lead }}`: the reps of `assignable` with a role that can own the lead, without its
    owner (an SQL goes to AEs only)."""
    return reps_for_lead(reps=list(reps or []), lead=lead)
