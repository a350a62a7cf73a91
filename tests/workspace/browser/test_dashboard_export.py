"""The dashboard's data tables and CSV exports in a real browser: a manager opens "Show data" under a
chart and reads the figures, downloads a section as CSV, narrows the page to one rep, and never sees
another team's rep. Saves artifacts/screenshots/dashboard-breakdowns.png at laptop width (1366×768).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from leadmgmt.tenancy.models import Role, Team
from leadmgmt.tenancy.services import membership_upsert, tenant_create
from routing.models import SlaClock
from tests.support.browser import ARTIFACTS
from tests.support.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"


def sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])


def member(tenant, email, role, *, first, last, team=None):
    membership = membership_upsert(tenant=tenant, email=email, role=role, password=PASSWORD)[0]
    membership.user.first_name, membership.user.last_name = first, last
    membership.user.save(update_fields=["first_name", "last_name"])
    if team is not None:
        membership.team = team
        membership.save(update_fields=["team"])
    return membership.user


def test_a_manager_reads_a_charts_data_table_and_downloads_it_as_csv(page, live_server):
    acme = tenant_create(slug="acme-export", name="Acme Export", admin_email="admin@acme-export.test",
                         admin_password=PASSWORD).tenant
    east = Team.objects.unscoped().create(tenant=acme, name="East")
    west = Team.objects.unscoped().create(tenant=acme, name="West")
    manager = member(acme, "mia@acme-export.test", Role.MANAGER, first="Mia", last="Manager")
    east.manager = manager
    east.save(update_fields=["manager"])
    ann = member(acme, "ann@acme-export.test", Role.SDR, first="Ann", last="Adams", team=east)
    bob = member(acme, "bob@acme-export.test", Role.AE, first="Bob", last="Brown", team=east)
    cat = member(acme, "cat@acme-export.test", Role.SDR, first="Cat", last="Westerly", team=west)
    now = timezone.now()
    for i in range(12):
        owner = [ann, bob, cat][i % 3]
        created = now - dt.timedelta(days=i % 6, hours=1)
        lead = LeadFactory(tenant=acme, owner=owner, created_at=created, source=["web_form", "webinar"][i % 2],
                           first_contacted_at=created + dt.timedelta(minutes=2 + i))
        SlaClock.objects.unscoped().create(tenant=acme, lead=lead, owner=owner, kind="first_contact",
                                           started_at=created, due_at=created + dt.timedelta(minutes=10),
                                           stopped_at=created + dt.timedelta(minutes=2 + i),
                                           stop_reason="first_contact")

    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, live_server, manager)
    assert page.goto(f"{live_server.url}/dashboard/").status == 200

    # The volume chart's figures are behind "Show data": closed at first, a real table once opened.
    details = page.locator("[data-testid=data-volume]")
    table = page.locator("[data-testid=table-volume]")
    assert not table.is_visible()
    details.locator("summary").click()
    assert table.is_visible()
    assert details.get_attribute("open") is not None
    headers = table.locator("thead th").all_inner_texts()
    assert [h.lower() for h in headers] == ["day", "web_form", "webinar", "total"]
    assert table.locator("tfoot th").inner_text().lower() == "total"
    assert table.locator("tfoot td").last.inner_text() == "12"
    # Keyboard users open it too: focus the summary and press Enter on another card.
    response_details = page.locator("[data-testid=data-response]")
    response_details.locator("summary").focus()
    page.keyboard.press("Enter")
    assert page.locator("[data-testid=table-response]").is_visible()

    # The manager's rep table: their team only, readable as it is.
    reps = page.locator("[data-testid=table-reps]")
    assert reps.locator("tbody th").all_inner_texts() == ["Ann Adams", "Bob Brown"]
    assert "Cat Westerly" not in page.content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("[data-testid=chart-rejections-by-rep]").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('[data-testid=chart-funnel-by-source]').scrollIntoView()")
    page.screenshot(path=str(ARTIFACTS / "dashboard-breakdowns.png"))
    page.screenshot(path=str(ARTIFACTS / "dashboard-breakdowns-full.png"), full_page=True)

    # The CSV link downloads the section for the same period.
    with page.expect_download() as info:
        page.locator("[data-testid=chart-reps] [data-testid=export-reps]").click()
    download = info.value
    today = now.date()
    assert download.suggested_filename == (
        f"acme-export-reps-{today - dt.timedelta(days=29):%Y-%m-%d}-to-{today:%Y-%m-%d}.csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:4] == ["Rep", "Leads", "Contacted", "Median response (seconds)"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [("Ann Adams", "4", "4"), ("Bob Brown", "4", "4")]

    # Narrow the page to one rep with the filter form; the export link follows the filter.
    page.select_option("#id_rep", label="Bob Brown")
    with page.expect_navigation():
        page.click("button:has-text('Show')")
    assert page.locator("[data-testid=table-reps] tbody th").all_inner_texts() == ["Bob Brown"]
    assert f"rep={bob.pk}" in page.locator("[data-testid=export-volume]").get_attribute("href")
    with page.expect_download() as info:
        page.locator("[data-testid=export-volume]").click()
    volume = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert volume[-1][0] == "Total" and volume[-1][-1] == "4"

    # Phone width: the wide tables scroll inside their cards, the page does not.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/dashboard/")
    page.locator("[data-testid=data-response] summary").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "dashboard-breakdowns-phone.png"), full_page=True)

    # Another team's rep by URL: refused beside the field, with a 400.
    response = page.goto(f"{live_server.url}/dashboard/?rep={cat.pk}")
    assert response.status == 400
    assert "is not one of the reps you can see" in page.locator("#id_rep-error").inner_text()
    assert "Cat Westerly" not in page.content()
