"""Phone width (390x844) and the keyboard: a manager moves a rep's open leads (choose, preview, confirm, report)
without a mouse, and a rep who opens Dashboards lands on their own numbers, each page without sideways
scrolling. Screenshots: bulk_preview_phone.png, bulk_result_phone.png, my_numbers_phone.png under
artifacts/screenshots/."""
from __future__ import annotations

from datetime import timedelta

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.models import Activity, Lead
from routing.defaults import routing_defaults_create
from tests.support.browser import ARTIFACTS
from tests.support.factories import MembershipFactory, TeamFactory, TenantFactory, UserFactory
from tests.support.workspace import PASSWORD, owned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def sign_in(page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at phone width"


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
    leads = [owned_lead(tenant, dana, first_name=name, last_name="Gibbons", company="Initech International Holdings",
                        source="web_form", team=team) for name in ("Peter", "Joanna", "Bill")]
    first = leads[0]
    called = first.created_at + timedelta(minutes=3)
    Activity.objects.unscoped().create(tenant=tenant, lead=first, kind="call", outcome="connected", actor=dana,
                                       occurred_at=called)
    Lead.objects.unscoped().filter(pk=first.pk).update(first_contacted_at=called, status="contacted")
    return {"tenant": tenant, "boss": boss, "dana": dana, "eli": eli, "leads": leads}


def test_a_manager_moves_a_reps_leads_from_the_keyboard_on_a_phone(page, live_server, floor):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, "maria.manager@acme.test", "/manager/reps/")
    no_sideways_scroll(page)
    page.focus("#bulk-reassign select[name=from_user]")
    page.keyboard.press("ArrowDown")  # from "Choose a rep…" to the first rep: Dana
    assert page.eval_on_selector("#bulk-reassign select[name=from_user]", "el => el.value") == str(floor["dana"].pk)
    assert page.eval_on_selector("#bulk-reassign select[name=to_user]", "el => el.value") == ""  # starts empty
    page.select_option("#bulk-reassign select[name=to_user]", str(floor["eli"].pk))
    page.fill("#bulk-reassign input[name=reason]", "Dana is on leave")
    with page.expect_navigation():
        page.press("#bulk-reassign input[name=reason]", "Enter")

    assert "Move 3 open leads of Dana Reyes?" in page.inner_text("h1")
    assert all(Lead.objects.unscoped().get(pk=x.pk).owner_id == floor["dana"].pk for x in floor["leads"])
    no_sideways_scroll(page)
    confirm = page.get_by_role("button", name="Move 3 leads")
    assert confirm.bounding_box()["height"] >= 36
    page.screenshot(path=str(ARTIFACTS / "bulk_preview_phone.png"), full_page=True)
    confirm.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert "Moved 3 leads from Dana Reyes to Eli Stone." in page.inner_text("#bulk-headline")
    assert all(Lead.objects.unscoped().get(pk=x.pk).owner_id == floor["eli"].pk for x in floor["leads"])
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "bulk_result_phone.png"), full_page=True)


def test_a_rep_opening_dashboards_lands_on_their_numbers_on_a_phone(page, live_server, floor):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, "dana@acme.test", "/queue/")
    page.get_by_role("link", name="My numbers").click()
    page.wait_for_selector("[data-testid=kpi-median]")
    page.goto(f"{live_server.url}/dashboard/")
    assert page.url.endswith("/dashboard/me/")
    assert page.inner_text("[data-testid=kpi-median] .kpi-value") == "3 min"
    assert page.inner_text("[data-testid=kpi-owned] .kpi-value") == "3"
    assert page.locator("#outcomes").is_visible()
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "my_numbers_phone.png"), full_page=True)
