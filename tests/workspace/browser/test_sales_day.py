"""A sales team's day in the browser, end to end through the real intake, the worker's pipeline (eager here), the
workspace pages and a real SMTP server:

1. three US leads arrive with the country as `US`, `USA` and `United States`; the SDR works the queue from
   the keyboard and qualifies each one, and each reaches the AE of the territory that lists "United States";
2. a hot lead arrives while the SDR's queue is open and appears without a reload, with its badge and a
   notification;
3. the manager moves the SDR's open leads to another SDR: preview, confirmation, report;
4. the tenant admin invites a new SDR, who signs in through the emailed link and receives leads.

Screenshots at laptop and phone width go to artifacts/screenshots/day_*.png.
"""
from __future__ import annotations

import pytest

from leadmgmt.tenancy.models import Membership, Role, Team
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import Lead, LeadStatus, Opportunity
from routing.models import Notification, Territory
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.sla import smtp_server  # noqa: F401 (fixture)
from tests.support.team import invitation_link
from tests.support.workspace import PASSWORD, owned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
BANT = {"budget": "$60k this year", "authority": "VP Sales signs", "need": "Leads wait days for a call",
        "timeline": "This quarter"}


def _member(tenant, email, role, first, last, team_name=None):
    membership, _created, _password = membership_upsert(tenant=tenant, email=email, role=role, team_name=team_name,
                                                        password=PASSWORD)
    user = membership.user
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])
    return user


@pytest.fixture
def day(settings, live_server, smtp_server):  # noqa: F811
    settings.PUBLIC_BASE_URL = live_server.url
    settings.LIVE_POLL_SECONDS = 1
    provisioned = tenant_create(slug="day-corp", name="Day Corp", admin_email="boss@day.test",
                                admin_password=PASSWORD)
    tenant = provisioned.tenant
    maria = _member(tenant, "maria@day.test", Role.MANAGER, "Maria", "Lopez", DEFAULT_TEAM)
    Team.objects.unscoped().filter(tenant=tenant, name=DEFAULT_TEAM).update(manager=maria)
    sam = _member(tenant, "sam@day.test", Role.SDR, "Sam", "Rivera", DEFAULT_TEAM)
    ana = _member(tenant, "ana@day.test", Role.AE, "Ana", "Ruiz", "Account Executives")
    aes = Team.objects.unscoped().get(tenant=tenant, name="Account Executives")
    # Typed as a name, as marketing ops would; leads arrive with codes and variants.
    Territory.objects.unscoped().create(tenant=tenant, name="North America", countries=["United States"], team=aes)
    return {"tenant": tenant, "form_key": provisioned.form_key, "maria": maria, "sam": sam, "ana": ana,
            "smtp": smtp_server, "url": live_server.url}


def _capture(page, day, **fields) -> Lead:
    response = page.request.post(f"{day['url']}/api/v1/intake/", headers={"X-Form-Key": day["form_key"]},
                                 data=fields)
    assert response.status == 201, response.text()
    return Lead.objects.unscoped().get(pk=response.json()["id"])


def _sign_in_by_keyboard(page, base_url, username, next_path="/queue/"):
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.focus("#id_username")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(next_path), page.url


def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"day_{name}.png"), full_page=True)


def test_a_sales_day(page, browser, day):
    page.set_viewport_size(LAPTOP)
    tenant, sam, ana = day["tenant"], day["sam"], day["ana"]

    # 1. Three US leads, three spellings; the pipeline scores and routes each to the SDR.
    spellings = {"US": "Peter", "USA": "Joanna", "United States": "Bill"}
    leads = [_capture(page, day, email=f"{first.lower()}@initech-{i}.example", first_name=first, last_name="Gibbons",
                      company=f"Initech {i}", job_title="Head of Operations", country=country)
             for i, (country, first) in enumerate(spellings.items())]
    for lead in leads:
        fresh = Lead.objects.unscoped().get(pk=lead.pk)
        assert (fresh.country, fresh.owner_id) == ("US", sam.pk), (fresh.country, fresh.owner_id)

    _sign_in_by_keyboard(page, day["url"], "sam@day.test")
    _shot(page, "queue_laptop")
    for lead in leads:
        # From the queue to the lead with the keyboard, then qualify (BANT) and submit with Enter.
        page.focus(f"tr[data-lead-id='{lead.pk}'] a")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith(f"/leads/{lead.pk}/")
        page.focus("details[data-action=qualify] summary")
        page.keyboard.press("Enter")
        for name, value in BANT.items():
            page.focus(f"#qualify-form [name={name}]")
            page.keyboard.type(value)
        if lead is leads[0]:
            _shot(page, "lead_page_qualify_laptop")
        page.focus("#qualify-form button[type=submit]")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Lead qualified and handed off to Ana Ruiz." in page.inner_text(".messages")
        qualified = Lead.objects.unscoped().get(pk=lead.pk)
        assert (qualified.status, qualified.owner_id) == (LeadStatus.QUALIFIED, ana.pk)
        assert Opportunity.objects.unscoped().get(lead=lead).owner_id == ana.pk

    # 2. A hot lead arrives while the queue is open: it appears without a reload, badged, and the bell counts it.
    page.goto(f"{day['url']}/queue/")
    page.evaluate("window.__sameDocument = true")
    Notification.objects.unscoped().filter(user=sam).update(read_at=tenant.created_at)  # an empty bell to start
    wait_for_js(page, "!document.querySelector('[data-testid=notification-count]')", timeout=10_000)
    hot = owned_lead(tenant, sam, first_name="Hannah", last_name="Hot", company="Globex", score=92, band="sql",
                     is_hot=True, country="US")
    page.wait_for_selector(f"tr[data-lead-id='{hot.pk}'] [data-hot-badge]", timeout=15_000)
    page.wait_for_selector("[data-testid=notification-count]", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True, "the queue updated without a reload"
    assert page.locator("tbody tr").first.get_attribute("data-lead-id") == str(hot.pk), "hot leads come first"
    assert Notification.objects.unscoped().filter(user=sam, lead=hot, read_at__isnull=True).exists()
    assert "left" in page.inner_text(f"tr[data-lead-id='{hot.pk}'] .countdown")
    assert hot.sla_due_at is not None and (hot.sla_due_at - hot.assigned_at).total_seconds() <= 5 * 60, \
        "a hot web lead gets the 5-minute clock"
    _shot(page, "queue_hot_lead_laptop")
    page.set_viewport_size(PHONE)
    _shot(page, "queue_hot_lead_phone")
    page.set_viewport_size(LAPTOP)

    # 3. The manager moves Sam's open leads to Eli: preview, confirm, report.
    eli = _member(tenant, "eli@day.test", Role.SDR, "Eli", "Stone", DEFAULT_TEAM)
    manager = browser.new_context(viewport=LAPTOP).new_page()
    try:
        _sign_in_by_keyboard(manager, day["url"], "maria@day.test", "/manager/reps/")
        manager.select_option("#bulk-reassign select[name=from_user]", str(sam.pk))
        assert manager.eval_on_selector("#bulk-reassign select[name=to_user]", "el => el.value") == ""
        manager.select_option("#bulk-reassign select[name=to_user]", str(eli.pk))
        manager.fill("#bulk-reassign input[name=reason]", "Sam is at the trade show")
        with manager.expect_navigation():
            manager.press("#bulk-reassign input[name=reason]", "Enter")
        assert "Move 1 open lead of Sam Rivera?" in manager.inner_text("h1")
        assert Lead.objects.unscoped().get(pk=hot.pk).owner_id == sam.pk, "a preview moves nothing"
        _shot(manager, "bulk_preview_laptop")
        with manager.expect_navigation():
            manager.get_by_role("button", name="Move 1 lead").click()
        assert "Moved 1 lead from Sam Rivera to Eli Stone." in manager.inner_text("#bulk-headline")
        assert Lead.objects.unscoped().get(pk=hot.pk).owner_id == eli.pk
        manager.set_viewport_size(PHONE)
        _shot(manager, "bulk_result_phone")
    finally:
        manager.context.close()

    # 4. The tenant admin invites Nia; she signs in through the emailed link and receives leads.
    admin = browser.new_context(viewport=LAPTOP).new_page()
    try:
        _sign_in_by_keyboard(admin, day["url"], "boss@day.test", "/team/")
        admin.fill("#id_email", "nia@day.test")
        admin.select_option("#id_role", Role.SDR.value)
        with admin.expect_navigation():
            admin.click("#invite-form button[type=submit]")
        assert "Invitation sent to nia@day.test" in admin.inner_text(".messages")
        _shot(admin, "team_laptop")
    finally:
        admin.context.close()
    [mail] = [m for m in day["smtp"].messages if m["to"] == ["nia@day.test"]]
    invitee = browser.new_context(viewport=PHONE).new_page()
    try:
        invitee.goto(invitation_link(mail["body"]))
        invitee.fill("#id_first_name", "Nia")
        invitee.fill("#id_last_name", "Park")
        invitee.fill("#id_new_password1", "nia-picks-a-long-one-42")
        invitee.fill("#id_new_password2", "nia-picks-a-long-one-42")
        with invitee.expect_navigation():
            invitee.click("#accept-form button[type=submit]")
        assert invitee.url.endswith("/queue/")
        nia = Membership.objects.unscoped().get(tenant=tenant, user__username="nia@day.test")
        assert (nia.role, nia.team.name, nia.is_active) == (Role.SDR, DEFAULT_TEAM, True)

        arrivals = [_capture(invitee, day, email=f"buyer{i}@hooli-{i}.example", first_name=f"Buyer{i}",
                             company=f"Hooli {i}", country="USA") for i in range(3)]
        owners = {Lead.objects.unscoped().get(pk=lead.pk).owner_id for lead in arrivals}
        assert nia.user_id in owners, "the default round-robin reaches the invited rep"
        invitee.goto(f"{day['url']}/queue/")
        assert invitee.locator("tbody tr").count() >= 1
        _shot(invitee, "invited_rep_queue_phone")
    finally:
        invitee.context.close()
    assert not Lead.objects.unscoped().filter(tenant=tenant, owner__isnull=True).exclude(
        status__in=[LeadStatus.QUALIFIED]).exists(), "no lead of the day waits unassigned"
