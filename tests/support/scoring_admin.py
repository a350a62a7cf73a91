"""Scoring admin test helpers: the change page's URL and what a browser would post back from it unchanged."""
from __future__ import annotations

from django import forms
from django.urls import reverse


def url(view: str, model) -> str:
    return reverse(f"admin:scoring_scoringmodel_{view}", args=[model.pk])


def post_data(page) -> dict:
    """What the browser would post back for an admin change page, unchanged (values in their stored form)."""
    data: dict = {}

    def add(form):
        for name, field in form.fields.items():
            bound = form[name]
            value = bound.value()
            if isinstance(field, forms.BooleanField):
                if value:
                    data[bound.html_name] = "on"
            elif value is not None:
                data[bound.html_name] = value

    add(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management[name].html_name] = management[name].value()
        for form in inline.formset.forms:
            add(form)
    return data
