"""Marketing ops edits a scoring draft in the admin on a 1366 px laptop: no horizontal scroll, each rule's
condition is a field, an operator and the inputs that operator needs; a bad range is refused on the field."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from scoring.models import ScoringRule
from scoring.services import scoring_default_model_create, scoring_model_draft_create
from tests.support.browser import ARTIFACTS
from tests.support.factories import TenantFactory
from tests.support.workspace import PASSWORD, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rule_block(page, name: str):
    return page.locator(".inline-related", has=page.locator(f"input[name$='-name'][value='{name}']"))


def test_the_rule_editor_fits_a_laptop_and_edits_conditions_per_operator(page, live_server):
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    published = scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM, based_on=published)
    ops = person(tenant, role=Role.MARKETING_OPS, username="ops@acme.test")
    ops.is_staff = True
    ops.save(update_fields=["is_staff"])

    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/scoring/scoringmodel/{draft.pk}/change/")
    page.fill("#id_username", "ops@acme.test")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url.endswith(f"/scoringmodel/{draft.pk}/change/")
    page.wait_for_selector("[data-rule-value]")

    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scoring_rule_editor_laptop.png"))

    # existing rules show the inputs of their operator, filled in
    size = rule_block(page, "Company size: 20-99")
    size.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "scoring_rule_editor_rules_laptop.png"))
    assert size.locator("[data-value-part=min]").input_value() == "20"
    assert size.locator("[data-value-part=max]").input_value() == "99"
    assert not size.locator("[data-value-part=text]").is_visible()
    industry = rule_block(page, "Industry: target")
    assert industry.locator("[data-value-part=items]").is_visible()
    assert "Software" in industry.locator("[data-value-part=items]").input_value().splitlines()
    free = rule_block(page, "Negative: free email")
    assert free.locator(".rule-value-none").is_visible()

    # switching the operator switches the inputs
    title = rule_block(page, "Title: C-level")
    title.locator("select[name$='-operator']").select_option("keywords")
    assert title.locator("[data-value-part=items]").is_visible() and not title.locator("[data-value-part=text]").is_visible()
    title.locator("[data-value-part=items]").fill("CEO\nCTO\nFounder")

    # a range whose minimum is above its maximum is refused on the field, nothing saved
    size.locator("[data-value-part=min]").fill("120")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    size = rule_block(page, "Company size: 20-99")
    assert "minimum is above its maximum" in size.inner_text()
    assert ScoringRule.objects.unscoped().get(model=draft, name="Title: C-level").operator == "regex"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    size.locator("[data-value-part=min]").fill("20")
    size.locator("[data-value-part=max]").fill("149")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert page.locator(".errornote").count() == 0, [
        e.locator("xpath=ancestor::div[contains(@class,'inline-related')]").locator("input[name$='-name']").input_value()
        + ": " + e.inner_text() for e in page.locator(".inline-related .errorlist").all()]
    title = ScoringRule.objects.unscoped().get(model=draft, name="Title: C-level")
    assert (title.operator, title.value) == ("keywords", ["CEO", "CTO", "Founder"])
    assert ScoringRule.objects.unscoped().get(model=draft, name="Company size: 20-99").value == {"min": 20, "max": 149}
