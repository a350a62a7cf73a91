"""Phone width (390x844) and the keyboard: My queue and the manager's team queue show one card per lead (the SLA
clock on top) instead of a sideways-scrolling table, the same markup stays a table at laptop width, htmx swaps keep
the cards, a manager reassigns from a card; the skip link and focus ring work from the keyboard. Screenshots:
queue_phone.png, manager_queue_phone.png, manager_escalations_phone.png under artifacts/screenshots/."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.models import Lead
from routing.defaults import routing_defaults_create
from routing.models import SlaClock, SlaKind
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.factories import MembershipFactory, TeamFactory, TenantFactory, UserFactory
from tests.support.workspace import PASSWORD, owned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


def sign_in(page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith(next_path)


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at phone width"


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, "not rendered"
    return found


@pytest.fixture
def floor():
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    team = TeamFactory(tenant=tenant, name="Inbound EMEA")
    boss = UserFactory(username="maria.manager@acme.test", first_name="Maria", last_name="Manager")
    MembershipFactory(tenant=tenant, user=boss, role=Role.MANAGER, team=team)
    team.manager = boss
    team.save(update_fields=["manager"])
    dana = UserFactory(username="dana@acme.test", first_name="Dana", last_name="Reyes")
    MembershipFactory(tenant=tenant, user=dana, role=Role.SDR, team=team)
    eli = UserFactory(username="eli@acme.test", first_name="Eli", last_name="Stone")
    MembershipFactory(tenant=tenant, user=eli, role=Role.SDR, team=team)
    leads = [
        owned_lead(tenant, dana, due_in=timedelta(minutes=-7), first_name="Peter", last_name="Gibbons",
                   company="Initech International Holdings", score=82, band="hot", lead_class="high_fit",
                   source="webinar", team=team),
        owned_lead(tenant, dana, due_in=timedelta(minutes=25), first_name="Joanna", last_name="Lee",
                   company="Chotchkie's", score=64, band="warm", lead_class="nurture", source="web_form", team=team),
        owned_lead(tenant, dana, due_in=timedelta(hours=5), first_name="Bill", last_name="Lumbergh",
                   company="Initech", score=35, band="cold", lead_class="future_fit", source="referral", team=team),
    ]
    now = timezone.now()
    SlaClock.objects.unscoped().filter(lead=leads[0], stopped_at__isnull=True).update(breached_at=now, level=1)
    return {"tenant": tenant, "boss": boss, "dana": dana, "eli": eli, "leads": leads,
            "kind": SlaKind.FIRST_CONTACT}


def test_my_queue_is_cards_on_a_phone_and_a_table_on_a_laptop(page, live_server, floor):
    top, second, third = floor["leads"]
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, "dana@acme.test", "/queue/")
    no_sideways_scroll(page)
    card = page.locator(f"tr[data-lead-id='{top.pk}']")
    assert card.evaluate("el => getComputedStyle(el).display") == "grid"
    assert box(page.locator("[data-testid=queue-table] thead"))["width"] <= 1  # headers are for screen readers
    # everything a rep needs is on the card, the hidden-on-small columns included
    text = card.inner_text()
    for expected in ("Peter Gibbons", "Initech International Holdings", "82", "Hot", "High-fit", "New", "webinar"):
        assert expected in text, expected
    # the SLA clock sits on the card's first line, beside the name, and stands out when overdue
    page.wait_for_selector(f"tr[data-lead-id='{top.pk}'] .countdown.overdue")
    clock, name = box(card.locator(".countdown")), box(card.locator(".cell-title a"))
    assert abs(clock["y"] - name["y"]) < 24 and clock["x"] > name["x"]
    assert card.locator(".countdown").evaluate("el => getComputedStyle(el).fontWeight") == "700"
    cards = [box(page.locator(f"tr[data-lead-id='{x.pk}']")) for x in (top, second, third)]
    assert cards[0]["y"] < cards[1]["y"] < cards[2]["y"]  # stacked, SLA order
    assert all(c["width"] <= PHONE["width"] for c in cards)
    page.screenshot(path=str(ARTIFACTS / "queue_phone.png"), full_page=True)

    # an htmx search swaps the table and the result is still cards, announced to screen readers
    page.fill("#id_q", "lumbergh")
    wait_for_js(page, "document.querySelectorAll('[data-testid=queue-table] tbody tr').length === 1")
    swapped = page.locator(f"tr[data-lead-id='{third.pk}']")
    assert swapped.evaluate("el => getComputedStyle(el).display") == "grid"
    wait_for_js(page, "document.getElementById('live-status').textContent.includes('1 lead')")
    no_sideways_scroll(page)

    # the same markup is a table at laptop width
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/queue/")
    row = page.locator(f"tr[data-lead-id='{top.pk}']")
    assert row.evaluate("el => getComputedStyle(el).display") == "table-row"
    assert box(page.locator("[data-testid=queue-table] thead"))["height"] > 10


def test_a_manager_reassigns_from_a_card_on_a_phone(page, live_server, floor):
    top, second, _ = floor["leads"]
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, "maria.manager@acme.test", "/manager/")
    no_sideways_scroll(page)
    card = page.locator(f"#team-queue tr[data-lead-id='{second.pk}']")
    assert card.evaluate("el => getComputedStyle(el).display") == "block"
    label = card.locator(".cell-owner").evaluate("el => getComputedStyle(el, '::before').content")
    assert label == '"Owner"'  # each value shows its column's name
    page.screenshot(path=str(ARTIFACTS / "manager_queue_phone.png"), full_page=True)
    go = card.get_by_role("button", name="Go")
    assert box(go)["height"] >= 36  # a thumb-sized target
    page.evaluate("window.__sameDocument = true")
    card.locator("select[name=to_user]").select_option(str(floor["eli"].pk))
    go.click()
    page.wait_for_selector(f"#team-queue tr[data-lead-id='{second.pk}'] .row-notice")
    card = page.locator(f"#team-queue tr[data-lead-id='{second.pk}']")
    assert "now belongs to eli@acme.test" in card.inner_text()
    assert card.evaluate("el => getComputedStyle(el).display") == "block"
    assert page.evaluate("window.__sameDocument") is True
    assert Lead.objects.unscoped().get(pk=second.pk).owner_id == floor["eli"].pk
    no_sideways_scroll(page)

    for path in ("/manager/escalations/", "/manager/aging/", "/manager/unassigned/", "/manager/reps/"):
        page.goto(f"{live_server.url}{path}")
        no_sideways_scroll(page)
    page.goto(f"{live_server.url}/manager/escalations/")
    assert page.locator(f"#breached tr[data-lead-id='{top.pk}']").evaluate("el => getComputedStyle(el).display") == "block"
    page.screenshot(path=str(ARTIFACTS / "manager_escalations_phone.png"), full_page=True)


def test_keyboard_skip_link_focus_ring_and_row_controls(page, live_server, floor):
    _, second, _ = floor["leads"]
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server.url, "maria.manager@acme.test", "/manager/")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert box(skip)["x"] >= 0 and skip.is_visible()  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    # Tab reaches a row's rep choice and its Go button, with a visible focus ring
    select = page.locator(f"#reassign-{second.pk}")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == f"reassign-{second.pk}":
            break
    else:
        pytest.fail("Tab never reached the row's rep choice")
    ring = select.evaluate("el => [getComputedStyle(el).outlineStyle, getComputedStyle(el).outlineWidth]")
    assert ring == ["solid", "3px"]
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.startswith("Go") and "Joanna Lee" in focused  # its accessible name says which lead
    select.select_option(str(floor["eli"].pk))
    select.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    wait_for_js(page, "document.getElementById('live-status').textContent.includes('now belongs to eli@acme.test')")
    assert Lead.objects.unscoped().get(pk=second.pk).owner_id == floor["eli"].pk
    # the swapped row keeps the keyboard focus: its rep choice, ready for the next change
    assert page.evaluate("document.activeElement.id") == f"reassign-{second.pk}"
