"""A manager signs in, reassigns a lead from the team queue (on its page with a reason, and with one click on
its row, where a lead that changed hands meanwhile is refused in place) and sends a rep out of office;
screenshots of the team queue and the reps page at laptop width (1366x768) go to artifacts/screenshots/."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Lead
from routing.models import Assignment
from routing.services.assign import lead_reassign
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.routing import lead, rep, rule, team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-123"  # tests.support.factories.UserFactory


@pytest.fixture
def sales_floor(tenant):
    inbound = team(tenant, "Inbound EMEA")
    boss = rep(tenant, inbound, role=Role.MANAGER, username="maria.manager@acme.test")
    inbound.manager = boss
    inbound.save(update_fields=["manager"])
    ann = rep(tenant, inbound, username="ann.sdr@acme.test", capacity=20)
    bob = rep(tenant, inbound, username="bob.sdr@acme.test", capacity=20)
    rule(tenant, 10, team=inbound, name="Inbound round-robin")
    now = timezone.now()
    people = [("Grace", "Hopper", "hot", 92, -10), ("Alan", "Turing", "warm", 64, 25), ("Ada", "Lovelace", "hot", 88, 50),
              ("Edsger", "Dijkstra", "cold", 31, 240), ("Barbara", "Liskov", "warm", 57, 600)]
    for i, (first, last, band, score, minutes) in enumerate(people):
        lead(tenant, first_name=first, last_name=last, company=f"{last} Labs", owner=ann if i % 2 == 0 else bob,
             team=inbound, band=band, score=score, sla_due_at=now + timedelta(minutes=minutes), assigned_at=now)
    lead(tenant, first_name="Nobody", last_name="Yet", unassigned_reason="Every rep of Inbound EMEA is at capacity")
    return {"boss": boss, "ann": ann, "bob": bob}


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.screenshot(path=str(ARTIFACTS / name))


def test_a_manager_reassigns_a_lead_and_sends_a_rep_out_of_office(page, live_server, tenant, sales_floor):
    ann, bob = sales_floor["ann"], sales_floor["bob"]
    page.goto(f"{live_server.url}/accounts/login/?next=/manager/")
    page.fill("#id_username", "maria.manager@acme.test")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith("/manager/")

    # the team queue: SLA order, the overdue lead first with a live countdown
    rows = page.locator("#team-queue tbody tr")
    assert rows.count() == 5
    assert "Grace Hopper" in rows.nth(0).inner_text()
    assert "overdue" in (rows.nth(0).locator(".countdown").get_attribute("class") or "")
    assert "Nobody" not in page.inner_text("#team-queue")
    shot(page, "manager_team_queue.png")

    # filter by rep: htmx swaps the results in place and the URL follows
    page.select_option("#id_rep", str(bob.pk))
    wait_for_js(page, "document.querySelectorAll('#team-queue tbody tr').length === 2")
    assert f"rep={bob.pk}" in page.url and "Grace Hopper" not in page.inner_text("#team-queue")
    page.select_option("#id_rep", "")
    wait_for_js(page, "document.querySelectorAll('#team-queue tbody tr').length === 5")
    rows = page.locator("#team-queue tbody tr")

    # reassign Grace (Ann's) to Bob
    grace = Lead.objects.unscoped().get(tenant=tenant, first_name="Grace")
    rows.nth(0).get_by_role("link", name="With a reason").click()
    page.wait_for_selector("#reassign-form")
    page.select_option("#id_to_user", str(bob.pk))
    page.fill("#id_reason", "Ann is at a conference")
    with page.expect_navigation():
        page.click("#reassign-form button[type=submit]")
    assert "now belongs to bob.sdr@acme.test" in page.inner_text(".messages")
    assert Lead.objects.unscoped().get(pk=grace.pk).owner_id == bob.pk
    assignment = Assignment.objects.unscoped().filter(lead=grace).latest("at")
    assert (assignment.reason, assignment.previous_owner_id) == ("Ann is at a conference", ann.pk)

    # one click on a row: Alan (Bob's) to Ann; htmx swaps the row in place with the new owner
    alan, ada = (Lead.objects.unscoped().get(tenant=tenant, first_name=name) for name in ("Alan", "Ada"))
    page.evaluate("window.__sameDocument = true")
    alan_row = page.locator(f"#team-queue tr[data-lead-id='{alan.pk}']")
    alan_row.get_by_label("Reassign to").select_option(str(ann.pk))
    alan_row.get_by_role("button", name="Go").click()
    page.wait_for_selector(f"#team-queue tr[data-lead-id='{alan.pk}'] .row-notice")
    alan_row = page.locator(f"#team-queue tr[data-lead-id='{alan.pk}']")
    assert "now belongs to ann.sdr@acme.test" in alan_row.inner_text()
    assert "ann.sdr@acme.test" in alan_row.locator(".cell-owner").inner_text()
    assert page.evaluate("window.__sameDocument") is True  # no page load
    assert Lead.objects.unscoped().get(pk=alan.pk).owner_id == ann.pk
    wait_for_js(page, "document.getElementById('live-status').textContent.includes('now belongs to ann')")
    shot(page, "manager_team_queue_inline_reassign.png")

    # Ada changes hands behind the manager's back: the click is refused on the row, which shows her owner now
    boss = sales_floor["boss"]
    lead_reassign(lead=ada, actor=Actor.for_user(boss), to_user=bob, reason="Other tab", expected_owner_id=ann.pk)
    ada_row = page.locator(f"#team-queue tr[data-lead-id='{ada.pk}']")
    ada_row.get_by_label("Reassign to").select_option(str(bob.pk))
    ada_row.get_by_role("button", name="Go").click()
    page.wait_for_selector(f"#team-queue tr[data-lead-id='{ada.pk}'] .row-error")
    ada_row = page.locator(f"#team-queue tr[data-lead-id='{ada.pk}']")
    assert "reassigned meanwhile" in ada_row.locator(".row-error").inner_text()
    assert "bob.sdr@acme.test" in ada_row.locator(".cell-owner").inner_text()
    assert Assignment.objects.unscoped().filter(lead=ada, actor_user=boss).count() == 1  # only the other tab's

    # rep load: send Ann out of office, and routing skips her
    page.get_by_role("link", name="Reps").click()
    page.wait_for_selector("#reps")
    ann_row = page.locator('#reps tr[data-rep="ann.sdr@acme.test"]')
    assert "Available" in ann_row.locator(".availability").inner_text()
    with page.expect_navigation():
        ann_row.get_by_role("button", name="Mark out of office").click()
    assert "ann.sdr@acme.test is out of office" in page.inner_text(".messages")
    ann_row = page.locator('#reps tr[data-rep="ann.sdr@acme.test"]')
    assert "Out of office" in ann_row.locator(".availability").inner_text()
    assert ann_row.get_by_role("button", name="Mark available").is_visible()
    assert Membership.objects.unscoped().get(tenant=tenant, user=ann).is_available is False
    shot(page, "manager_reps.png")

    # route the unassigned lead again: only Bob can take it now
    page.get_by_role("link", name="Unassigned").click()
    row = page.locator("#unassigned tbody tr").first
    assert "Every rep of Inbound EMEA is at capacity" in row.inner_text()
    row.get_by_role("button", name="Route again").click()
    page.wait_for_selector("#unassigned tr.row-gone")
    assert "now belongs to bob.sdr@acme.test" in page.inner_text("#unassigned tr.row-gone")
    assert Lead.objects.unscoped().get(tenant=tenant, first_name="Nobody").owner_id == bob.pk

    # phone width: nothing wider than the screen (tables scroll inside their cards)
    for path in ("/manager/", "/manager/reps/", "/manager/unassigned/"):
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide at phone width"
    page.screenshot(path=str(ARTIFACTS / "manager_unassigned_phone.png"), full_page=True)
