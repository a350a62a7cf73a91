"""The lead page in the browser: on a phone (390 px) the Actions card comes first and the keyboard reaches it first,
at laptop width it sits beside the lead; a call logged on a lead a manager reassigned meanwhile comes back with the
reason and the typed notes, and the rep can still open the lead read-only. Screenshots: lead_page_phone.png,
lead_page_stale_refusal.png under artifacts/screenshots/."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.models import Role
from leads.models import Activity
from routing.defaults import routing_defaults_create
from routing.services.assign import lead_reassign
from tests.support.browser import ARTIFACTS
from tests.support.factories import MembershipFactory, TeamFactory, TenantFactory, UserFactory
from tests.support.workspace import PASSWORD, owned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


def sign_in(page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith(next_path)


def top(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


@pytest.fixture
def floor():
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    team = TeamFactory(tenant=tenant, name="Inbound")
    maria = UserFactory(username="maria@acme.test", first_name="Maria", last_name="Lopez")
    MembershipFactory(tenant=tenant, user=maria, role=Role.MANAGER, team=team)
    dana = UserFactory(username="dana@acme.test", first_name="Dana", last_name="Reyes")
    MembershipFactory(tenant=tenant, user=dana, role=Role.SDR, team=team)
    sam = UserFactory(username="sam@acme.test", first_name="Sam", last_name="Rivera")
    MembershipFactory(tenant=tenant, user=sam, role=Role.SDR, team=team)
    lead = owned_lead(tenant, dana, first_name="Peter", last_name="Gibbons", company="Initech", score=72,
                      band="mql", team=team)
    return {"tenant": tenant, "maria": maria, "dana": dana, "sam": sam, "lead": lead}


def test_on_a_phone_the_actions_come_first_for_the_eye_and_the_keyboard(page, live_server, floor):
    lead = floor["lead"]
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, "dana@acme.test", f"/leads/{lead.pk}/")
    actions, contact = top(page, "[data-testid=actions]"), top(page, "section[aria-labelledby=contact-h]")
    assert actions["y"] < contact["y"]
    assert actions["width"] <= PHONE["width"] and page.evaluate("document.documentElement.scrollWidth") <= 390
    assert actions["y"] < 600, "the actions start within the first screen"
    page.screenshot(path=str(ARTIFACTS / "lead_page_phone.png"), full_page=True)

    # The keyboard meets the log form (open) before anything of the Contact card.
    page.focus("#content")
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(
            "(() => { const el = document.activeElement; const card = el.closest('section');"
            " return card ? (card.getAttribute('aria-labelledby') || '') : ''; })()"))
        if "contact-h" in seen:
            break
    assert "actions-h" in seen and seen.index("actions-h") < seen.index("contact-h")

    # At laptop width the actions sit in the right-hand column, level with the contact card.
    page.set_viewport_size(LAPTOP)
    actions, contact = top(page, "[data-testid=actions]"), top(page, "section[aria-labelledby=contact-h]")
    assert actions["x"] > contact["x"] + contact["width"] - 1 and abs(actions["y"] - contact["y"]) < 2


def test_a_call_logged_on_a_lead_reassigned_meanwhile_keeps_the_notes_and_says_why(page, live_server, floor):
    lead = floor["lead"]
    page.set_viewport_size(LAPTOP)
    sign_in(page, live_server.url, "dana@acme.test", f"/leads/{lead.pk}/")
    page.select_option("#id_kind", "call")
    page.select_option("#id_outcome", "connected")
    notes = "Spoke with Peter; demo next Tuesday with their CTO."
    page.fill("#id_body", notes)
    # meanwhile the manager gives the lead to Sam
    lead_reassign(lead=lead, actor=Actor.for_user(floor["maria"]), to_user=floor["sam"], reason="Dana is out")
    with page.expect_navigation():
        page.click("details[data-action=log] button[type=submit]")
    alert = page.inner_text("details[data-action=log] .form-errors")
    assert "reassigned meanwhile by Maria Lopez (manager): it now belongs to Sam Rivera (SDR)" in alert
    assert page.input_value("#id_body") == notes and page.input_value("#id_outcome") == "connected"
    assert page.locator("details[data-action=log] button[type=submit]").count() == 0
    assert "Now owned by Sam Rivera (SDR)" in page.inner_text("[data-testid=now-owned-by]")
    page.screenshot(path=str(ARTIFACTS / "lead_page_stale_refusal.png"), full_page=True)
    assert not Activity.objects.unscoped().filter(lead=lead).exists()

    # Reloading the lead is a read-only page, not a 404.
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    assert page.locator("[data-testid=former-owner]").is_visible()
    assert page.locator("form[action*='/log/']").count() == 0
