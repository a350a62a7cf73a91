"""Bounced addresses and the queue's CSV export in a real browser.

A hard bounce reported by the email provider puts a banner on the lead page (laptop and phone widths) and the lead
in the manager's "Bounced addresses" list; the rep dismisses it and it is gone from both. A rep filters My queue
with htmx (no reload), ticks columns in "Export CSV" and downloads the filtered list. Screenshots under
artifacts/screenshots/: bounce-banner-laptop.png, bounce-banner-phone.png, bounced-addresses.png,
queue-export-chooser.png, queue-export-chooser-phone.png."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.models import Lead
from nurture.services.tracking import bounce_record
from routing.defaults import routing_defaults_create
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.factories import TeamFactory, TenantFactory
from tests.support.workspace import owned_lead, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


def sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])


@pytest.fixture
def world(db):
    tenant = TenantFactory(slug="acme-bounce", name="Acme Bounce")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    team = TeamFactory(tenant=tenant, name="East")
    manager = person(tenant, role=Role.MANAGER, team=team, username="mia@acme-bounce.test")
    rep = person(tenant, team=team, username="ann@acme-bounce.test")
    return tenant, manager, rep


def test_a_bounce_shows_on_the_lead_page_and_the_manager_list_until_dismissed(page, live_server, world):
    tenant, manager, rep = world
    lead = owned_lead(tenant, rep, first_name="Peter", last_name="Gibbons", email="peter@initech.example",
                      company="Initech")
    bounce_record(tenant=tenant, email=lead.email, kind="hard", reason="550 5.1.1 user unknown")

    sign_in(page, live_server, manager)
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/manager/")
    page.get_by_role("link", name="Bounced addresses").click()
    row = page.locator(f"[data-testid=bounced-list] tr[data-lead-id='{lead.pk}']")
    assert "Peter Gibbons" in row.inner_text() and "ann@acme-bounce.test" in row.inner_text()
    assert "550 5.1.1" in row.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bounced-addresses.png"), full_page=True)

    page.context.clear_cookies()
    sign_in(page, live_server, rep)
    for name, size in (("laptop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto(f"{live_server.url}/leads/{lead.pk}/")
        banner = page.locator("[data-testid=bounce-banner]")
        assert banner.is_visible()
        assert "check the address" in banner.inner_text() and "peter@initech.example" in banner.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        page.screenshot(path=str(ARTIFACTS / f"bounce-banner-{name}.png"))

    # "Fix the email" opens the edit form; then the rep decides the address is right and dismisses the flag.
    page.set_viewport_size(LAPTOP)
    banner = page.locator("[data-testid=bounce-banner]")
    banner.get_by_role("link", name="Fix the email").click()
    assert page.locator("details[data-action=edit]").get_attribute("open") is not None
    page.locator("[data-testid=bounce-banner]").get_by_role("button", name="Dismiss").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=bounce-banner]").count() == 0
    assert "Bounce flag dismissed" in page.content()
    assert Lead.objects.unscoped().get(pk=lead.pk).email_bounced_at is None

    page.context.clear_cookies()
    sign_in(page, live_server, manager)
    page.goto(f"{live_server.url}/manager/bounced/")
    assert "No bounced addresses to review." in page.content()


def test_a_rep_filters_the_queue_in_place_and_downloads_it_with_the_columns_ticked(page, live_server, world):
    tenant, _manager, rep = world
    owned_lead(tenant, rep, first_name="Ann", company="Acme One", email="one@acme.example")
    owned_lead(tenant, rep, first_name="Bo", company="=cmd|' /C calc'!A0", email="two@initech.example")
    owned_lead(tenant, rep, first_name="Cy", company="Globex", email="three@globex.example")
    sign_in(page, live_server, rep)
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/queue/")
    page.fill("#id_q", "acme")
    wait_for_js(page, "document.querySelectorAll('[data-testid=queue-table] tbody tr').length === 1")

    chooser = page.locator("[data-testid=export-chooser]")
    chooser.locator("summary").click()
    for label in ("Phone", "Job title", "Country", "Owner email", "Status", "Stage", "Score", "Band", "Source",
                  "Created", "Last name"):
        chooser.get_by_label(label, exact=True).uncheck()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "queue-export-chooser.png"))
    with page.expect_download() as info:
        chooser.get_by_role("button", name="Download CSV").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    # The filter typed after the page loaded went with the export (app.js), and the company cell is escaped.
    assert rows[0] == ["First name", "Email", "Company"]
    assert sorted(rows[1:]) == [["Ann", "one@acme.example", "Acme One"]]

    page.fill("#id_q", "")
    wait_for_js(page, "document.querySelectorAll('[data-testid=queue-table] tbody tr').length === 3")
    with page.expect_download() as info:
        chooser.get_by_role("button", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == 4 and ["Bo", "two@initech.example", "'=cmd|' /C calc'!A0"] in rows

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/queue/")
    page.locator("[data-testid=export-chooser] summary").click()
    assert page.locator("[data-testid=export-chooser] button:has-text('Download CSV')").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "queue-export-chooser-phone.png"), full_page=True)
