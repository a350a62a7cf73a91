"""Source ROI and the funnel plan in a real browser (issue 16 points 7, 8): marketing ops read the dashboard's Source
ROI table, download it as CSV, set the funnel plan on its page (a wrong rate is refused beside its field) and read
what a month needs and the months' actuals against it; at laptop (1366×768) and phone (390×844) widths without
sideways scroll. Saves artifacts/screenshots/roi-*.png and plan-*.png."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import membership_upsert, tenant_create
from leads.models import Outcome, StageTransition
from tests.support.browser import ARTIFACTS
from tests.support.factories import LeadFactory
from workspace.models import SourceCost

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])


def no_sideways_scroll(page, size) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]


def history(tenant) -> None:
    """This month: paid_search (2,000 for the source, 500 for its brand campaign) brought 6 leads, 2 MQLs, one won for
    9,000; events (700) 3 leads."""
    now = timezone.now()
    month = now.date().replace(day=1)
    SourceCost.objects.unscoped().create(tenant=tenant, month=month, source="paid_search", amount=Decimal("2000"),
                                         currency="EUR")
    SourceCost.objects.unscoped().create(tenant=tenant, month=month, source="paid_search", campaign="brand",
                                         amount=Decimal("500"), currency="EUR")
    SourceCost.objects.unscoped().create(tenant=tenant, month=month, source="events", amount=Decimal("700"),
                                         currency="EUR")
    created = max(now - dt.timedelta(hours=2), dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC))
    leads = [LeadFactory(tenant=tenant, created_at=created, source="paid_search",
                         campaign="brand" if i < 2 else "") for i in range(6)]
    leads += [LeadFactory(tenant=tenant, created_at=created, source="events") for _ in range(3)]
    for lead in leads[:2]:
        StageTransition.objects.unscoped().create(tenant=tenant, lead=lead, from_stage="raw", to_stage="mql",
                                                  at=created + dt.timedelta(minutes=5), actor_name="test")
    Outcome.objects.unscoped().create(tenant=tenant, lead=leads[0], result="won", amount=Decimal("9000"),
                                      currency="EUR", closed_at=created + dt.timedelta(minutes=30), source="sync")


def test_marketing_ops_read_the_roi_and_set_the_funnel_plan(page, live_server):
    acme = tenant_create(slug="acme-roi", name="Acme ROI", admin_email="admin@acme-roi.test",
                         admin_password=PASSWORD).tenant
    ops = membership_upsert(tenant=acme, email="olga@acme-roi.test", role=Role.MARKETING_OPS,
                            password=PASSWORD)[0].user
    history(acme)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # The dashboard's Source ROI table, shown as it is (not behind "Show data").
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server, ops)
    first = timezone.now().date().replace(day=1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    # The whole month: its costs count in full (a shorter period takes them pro rata).
    assert page.goto(f"{live_server.url}/dashboard/?start={first}&end={last}").status == 200
    card = page.locator("[data-testid=chart-roi]")
    card.scroll_into_view_if_needed()
    table = page.locator("[data-testid=table-roi]")
    assert table.is_visible()
    headers = [h.strip().lower() for h in table.locator("thead th").all_inner_texts()]
    assert headers[:3] == ["source", "campaign", "cost (eur)"] and headers[-1] == "roi"
    cells = [c.strip() for c in table.locator("tbody tr").first.locator("th, td").all_inner_texts()]
    # paid_search: 2,500 over 6 leads (416.67), 2 MQLs (1,250), one won for 9,000: ROI 260 %.
    assert cells[:4] == ["paid_search", "All campaigns", "2,500.00", "6"]
    assert cells[-2:] == ["9,000.00", "260%"]
    no_sideways_scroll(page, LAPTOP)
    card.screenshot(path=str(ARTIFACTS / "roi-laptop.png"))

    with page.expect_download() as download_info:
        card.locator("[data-testid=export-roi]").click()
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[1][:4] == ["paid_search", "All campaigns", "2500.00", "6"] and rows[1][-1] == "260.0"

    page.set_viewport_size(PHONE)
    page.reload()
    card.scroll_into_view_if_needed()
    assert table.is_visible()
    no_sideways_scroll(page, PHONE)
    card.screenshot(path=str(ARTIFACTS / "roi-phone.png"))

    # The funnel plan: from the dashboard's link, a wrong rate refused beside its field, then saved.
    page.set_viewport_size(LAPTOP)
    card.get_by_role("link", name="Funnel plan").click()
    page.wait_for_url("**/dashboard/plan/")
    assert page.locator("[data-testid=plan-empty]").is_visible()
    page.get_by_label("Revenue target").fill("120000")
    page.get_by_label("Target per").select_option("quarter")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("Average contract value").fill("12000")
    page.get_by_label("Opportunity → won (%)").fill("0")
    page.get_by_role("button", name="Save the plan").click()
    error = page.locator("#id_opportunity_to_won-error")
    assert error.is_visible() and "above 0" in error.inner_text()
    page.get_by_label("Opportunity → won (%)").fill("25")
    page.get_by_role("button", name="Save the plan").click()
    page.wait_for_selector("[data-testid=plan-needs]")
    # 40,000 a month / 12,000 = 3.33 → 4 won; 13.3 → 14 opportunities; 33.3 → 34 SALs; 66.7 → 67 MQLs; 445 leads.
    needs = {s: page.locator(f"[data-testid=need-{s}] .kpi-value").inner_text()
             for s in ("won", "opportunities", "sals", "mqls", "leads")}
    assert needs == {"won": "4", "opportunities": "14", "sals": "34", "mqls": "67", "leads": "445"}
    current = page.locator("[data-testid=plan-month]").first
    assert "(so far)" in current.inner_text()
    assert current.locator("[data-stage=leads]").inner_text().startswith("9 / 445")
    assert current.locator("[data-stage=won]").inner_text().startswith("1 / 4")
    no_sideways_scroll(page, LAPTOP)
    page.screenshot(path=str(ARTIFACTS / "plan-laptop.png"), full_page=True)

    page.set_viewport_size(PHONE)
    page.reload()
    assert page.locator("[data-testid=plan-needs]").is_visible()
    no_sideways_scroll(page, PHONE)
    page.screenshot(path=str(ARTIFACTS / "plan-phone.png"), full_page=True)
