"""The rule editor's condition inputs: existing rules load into the inputs of their operator (text, a list
one entry per line, a minimum and maximum), posted inputs are stored in the same JSON shape as before, and
bad input is a message on the value field with nothing saved."""
from __future__ import annotations

import pytest
from django.test import Client

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from scoring.models import ScoringRule
from scoring.services import scoring_default_model_create, scoring_model_draft_create
from tests.support.scoring_admin import post_data, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client(tenant, make_member):
    user = make_member(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def draft(tenant):
    published = scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    return scoring_model_draft_create(tenant=tenant, actor=SYSTEM, based_on=published)


def row(page, name: str) -> int:
    formset = next(i.formset for i in page.context["inline_admin_formsets"] if i.formset.prefix == "rules")
    return next(i for i, f in enumerate(formset.forms) if f.instance.name == name)


def as_parts(data: dict, index: int, **parts) -> None:
    """Post row `index`'s value the way the editor does: its inputs, not the plain JSON."""
    data.pop(f"rules-{index}-value", None)
    for key in ("text", "items", "min", "max"):
        data[f"rules-{index}-value_{key}"] = parts.get(key, "")


def stored(draft, name):
    return ScoringRule.objects.unscoped().get(model=draft, name=name)


def test_existing_rules_load_into_the_inputs_of_their_operator(ops_client, draft):
    page = ops_client.get(url("change", draft))
    html = page.content.decode()
    size = row(page, "Company size: 20-99")
    assert f'name="rules-{size}-value_min" value="20"' in html and f'name="rules-{size}-value_max" value="99"' in html
    industry = row(page, "Industry: target")
    textarea = html.split(f'name="rules-{industry}-value_items"', 1)[1].split("</textarea>", 1)[0]
    assert "\nSoftware" in textarea or ">Software" in textarea
    assert "[" not in textarea, "a list, not JSON"
    assert 'data-rule-value' in html and "js/scoring_rule_editor.js" in html


def test_posted_inputs_are_stored_in_the_json_shape_the_engine_reads(ops_client, draft):
    page = ops_client.get(url("change", draft))
    data = post_data(page)
    as_parts(data, row(page, "Company size: 20-99"), min="25", max="99")
    as_parts(data, row(page, "Industry: target"), items="Software\n  Fintech \n\n", text="stale")
    free = row(page, "Negative: free email")
    as_parts(data, free, text="left over from another operator")
    title = row(page, "Title: C-level")
    data[f"rules-{title}-operator"] = "contains"
    as_parts(data, title, text="  chief ")

    response = ops_client.post(url("change", draft), data)

    assert response.status_code == 302, response.context and [f.errors for f in response.context[
        "inline_admin_formsets"][0].formset.forms if f.errors]
    assert stored(draft, "Company size: 20-99").value == {"min": 25, "max": 99}
    assert stored(draft, "Industry: target").value == ["Software", "Fintech"]
    assert stored(draft, "Negative: free email").value is None
    assert (stored(draft, "Title: C-level").operator, stored(draft, "Title: C-level").value) == ("contains", "chief")


def test_unchanged_inputs_change_nothing(ops_client, draft):
    page = ops_client.get(url("change", draft))
    data = post_data(page)
    size = row(page, "Company size: 20-99")
    as_parts(data, size, min="20", max="99")
    before = list(ScoringRule.objects.unscoped().filter(model=draft).order_by("id").values())
    assert ops_client.post(url("change", draft), data).status_code == 302
    assert list(ScoringRule.objects.unscoped().filter(model=draft).order_by("id").values()) == before


@pytest.mark.parametrize(("name", "parts", "message"), [
    ("Company size: 20-99", {"min": "lots"}, "The minimum must be a number."),
    ("Company size: 20-99", {}, "Give a minimum, a maximum or both."),
    ("Company size: 20-99", {"min": "99", "max": "20"}, "minimum is above its maximum"),
    ("Title: C-level", {"operator": "keywords", "items": " \n "}, "Give at least one keyword."),
    ("Title: C-level", {"text": "(unclosed"}, "Invalid regular expression"),
])
def test_bad_input_is_a_message_on_the_value_field(ops_client, draft, name, parts, message):
    page = ops_client.get(url("change", draft))
    data = post_data(page)
    index = row(page, name)
    if "operator" in parts:
        data[f"rules-{index}-operator"] = parts.pop("operator")
    as_parts(data, index, **parts)
    before = list(ScoringRule.objects.unscoped().filter(model=draft).order_by("id").values())

    response = ops_client.post(url("change", draft), data)

    assert response.status_code == 200
    form = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == "rules").forms[index]
    assert any(message in m for m in form.errors.get("value", [])), form.errors
    assert list(ScoringRule.objects.unscoped().filter(model=draft).order_by("id").values()) == before
    html = response.content.decode()
    for key, value in parts.items():  # what was typed is shown again, in its input
        if value.strip() and key != "items":
            assert f'name="rules-{index}-value_{key}" value="{value}"' in html
