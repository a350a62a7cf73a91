"""The feedback-loop report in a real browser: marketing ops open it from the navigation, pick November, read the
recommended threshold and the sections, download the CSV; at laptop (1366×768) and phone (390×844) widths with no
sideways scroll. Saves artifacts/screenshots/feedback-report-laptop.png and feedback-report-phone.png."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import membership_upsert, tenant_create
from tests.support.browser import ARTIFACTS
from tests.support.feedback import feedback_history

from .test_dashboard_export import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketing_ops_read_the_feedback_report_on_a_laptop_and_a_phone(page, live_server):
    acme = tenant_create(slug="acme-feedback", name="Acme Feedback", admin_email="admin@acme-feedback.test",
                         admin_password=PASSWORD).tenant
    feedback_history(acme)
    ops = membership_upsert(tenant=acme, email="olga@acme-feedback.test", role=Role.MARKETING_OPS,
                            password=PASSWORD)[0].user
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, live_server, ops)
    page.goto(f"{live_server.url}/queue/")
    with page.expect_navigation():
        page.click("nav.mainnav >> text=Feedback report")
    assert page.url.endswith("/reports/feedback/")
    page.fill("#id_from", "2026-11-01")
    page.fill("#id_to", "2026-11-30")
    with page.expect_navigation():
        page.click("button:has-text('Show')")
    assert page.locator("[data-testid=recommended]").inner_text() == "50"
    assert "MQL acceptance" in page.locator("[data-testid=kpi-acceptance]").inner_text()
    assert "50%" in page.locator("[data-testid=kpi-acceptance]").inner_text()
    assert "Web round robin" in page.locator("[data-testid=rejections-routing_rule]").inner_text()
    assert "10,000.00 EUR" in page.locator("[data-testid=won-source]").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.screenshot(path=str(ARTIFACTS / "feedback-report-laptop.png"))
    page.screenshot(path=str(ARTIFACTS / "feedback-report-laptop-full.png"), full_page=True)

    with page.expect_download() as info:
        page.click("[data-testid=feedback-csv]")
    assert info.value.suggested_filename == "acme-feedback-feedback-2026-11-01-to-2026-11-30.csv"
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][0] == "section" and any(r[:2] == ["mql threshold", "recommended"] for r in rows)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/reports/feedback/?from=2026-11-01&to=2026-11-30")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("[data-testid=recommended]").is_visible()
    page.screenshot(path=str(ARTIFACTS / "feedback-report-phone.png"))
    page.screenshot(path=str(ARTIFACTS / "feedback-report-phone-full.png"), full_page=True)
    page.locator("[data-testid=rejections-source]").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "feedback-report-phone-rejections.png"))
    page.locator("[data-testid=won-title]").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "feedback-report-phone-won.png"))

    # A bad range: 400 with the message beside the field, the page still readable.
    response = page.goto(f"{live_server.url}/reports/feedback/?from=2026-11-30&to=2026-11-01")
    assert response.status == 400
    assert "on or before" in page.locator("#id_from-error").inner_text()
