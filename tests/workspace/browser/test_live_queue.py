"""My queue is live: with the page open, a lead assigned to the rep through routing's service shows up without a
reload, its SLA countdown running, and the bell's unread count rises; the notification takes the rep to the lead."""
from __future__ import annotations

from datetime import timedelta

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from routing.defaults import routing_defaults_create
from routing.models import Notification
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.factories import MembershipFactory, TenantFactory, UserFactory
from tests.support.workspace import PASSWORD, owned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_assigned_meanwhile_appears_in_the_open_queue_and_the_bell_counts_it(page, live_server, settings):
    settings.LIVE_POLL_SECONDS = 1
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    rep = UserFactory(username="dana@acme.test", email="dana@acme.test", first_name="Dana", last_name="Reyes")
    MembershipFactory(tenant=tenant, user=rep, role=Role.SDR)
    first = owned_lead(tenant, rep, due_in=timedelta(minutes=30), first_name="Peter", last_name="Gibbons")
    Notification.objects.unscoped().filter(user=rep).update(read_at=first.created_at)  # an empty bell to start

    page.goto(f"{live_server.url}/queue/")
    page.fill("#id_username", "dana@acme.test")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/queue/")
    page.wait_for_selector(f"tr[data-lead-id='{first.pk}']")
    assert page.locator("[data-testid=notification-count]").count() == 0
    page.evaluate("window.__sameDocument = true")
    # Polls that bring nothing new leave the table alone (no flicker, no repeated announcement).
    page.evaluate(f"document.querySelector(\"tr[data-lead-id='{first.pk}']\").__kept = true")
    page.wait_for_timeout(2500)
    assert page.evaluate(f"document.querySelector(\"tr[data-lead-id='{first.pk}']\").__kept === true")

    # Routing assigns a new lead to the rep while the queue is open.
    arrived = owned_lead(tenant, rep, due_in=timedelta(minutes=5), first_name="Joanna", last_name="Lee",
                         company="Chotchkie's", band="hot", score=91)
    page.wait_for_selector(f"tr[data-lead-id='{arrived.pk}']", timeout=15_000)
    wait_for_js(page, "document.querySelector('[data-testid=notification-count]') && "
                      "document.querySelector('[data-testid=notification-count]').textContent.trim() === '1'",
                timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True, "no reload"
    rows = page.locator("tbody tr")
    assert [rows.nth(i).get_attribute("data-lead-id") for i in range(rows.count())][0] == str(arrived.pk)
    # The countdown keeps running client-side in the swapped-in row.
    countdown = f"tr[data-lead-id='{arrived.pk}'] .countdown"
    wait_for_js(page, f"document.querySelector(\"{countdown}\").textContent.indexOf('left') !== -1")
    before = page.inner_text(countdown)
    wait_for_js(page, f"document.querySelector(\"{countdown}\").textContent !== {before!r}", timeout=5_000)

    # The bell leads to the notification centre; opening the notification marks it read and opens the lead.
    with page.expect_navigation():
        page.click("[data-testid=notification-bell]")
    assert page.url.endswith("/notifications/")
    assert "Joanna Lee" in page.inner_text("[data-testid=notification-list]")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "notifications_laptop.png"))
    with page.expect_navigation():
        page.click("[data-testid=notification-list] .notification.is-unread .notification-title a")
    assert page.url.endswith(f"/leads/{arrived.pk}/")
    assert page.locator("[data-testid=notification-count]").count() == 0
