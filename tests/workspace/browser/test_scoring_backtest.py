"""Marketing ops backtests a scoring draft beside the published model in the admin, on a 1366 px laptop and a
390 px phone: from the draft's change page, the range form, both columns, no sideways scroll."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from scoring.models import ScoringRule
from scoring.services import scoring_default_model_create, scoring_model_draft_create
from tests.scoring.test_backtest import HISTORY, closed_leads
from tests.support.browser import ARTIFACTS
from tests.support.factories import TenantFactory
from tests.support.workspace import PASSWORD, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width, height, name", [(1366, 768, "laptop"), (390, 844, "phone")])
def test_a_draft_is_backtested_beside_the_published_model_without_sideways_scroll(page, live_server, width, height,
                                                                                  name):
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    published = scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    closed_leads(tenant, HISTORY * 3)
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM, based_on=published)
    ScoringRule.objects.unscoped().filter(model=draft, name="Title: Manager").update(points=55)
    ScoringRule.objects.unscoped().filter(model=draft, name="Title: C-level").update(points=1)
    ops = person(tenant, role=Role.MARKETING_OPS, username="ops@acme.test")
    ops.is_staff = True
    ops.save(update_fields=["is_staff"])

    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/scoring/scoringmodel/{draft.pk}/change/")
    page.fill("#id_username", "ops@acme.test")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    with page.expect_navigation():
        page.click("#backtest-link")
    assert page.url.endswith(f"/scoringmodel/{draft.pk}/backtest/")
    assert page.locator(f"#backtest-v{draft.version}").is_visible()
    assert page.locator(f"#backtest-v{published.version}").is_visible()
    assert page.locator("#backtest-summary").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"scoring_backtest_{name}.png"), full_page=True)

    # a range whose end is before its start is refused on the field; a good one answers
    page.fill("#bt-from", "2026-04-01")
    page.fill("#bt-to", "2026-03-01")
    with page.expect_navigation():
        page.click("#backtest-range input[type=submit]")
    assert "before it starts" in page.locator("#backtest-range").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.fill("#bt-from", "2026-03-01")
    page.fill("#bt-to", "2026-03-31")
    with page.expect_navigation():
        page.click("#backtest-range input[type=submit]")
    assert "36" in page.locator(f"#backtest-v{draft.version} .bt-metrics").inner_text()
    aucs = page.locator(".bt-auc").all_inner_texts()
    assert len(aucs) == 2 and aucs[0] != aucs[1]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
