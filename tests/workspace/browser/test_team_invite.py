"""A tenant admin invites a new SDR from the Team page; the invitee opens the link from the email the SMTP
server received, chooses a password and lands in their queue, and the next lead goes to them."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Lead
from routing.defaults import routing_defaults_create
from routing.services.assign import lead_route
from tests.support.browser import ARTIFACTS
from tests.support.factories import LeadFactory, TenantFactory
from tests.support.sla import smtp_server  # noqa: F401 (fixture)
from tests.support.team import invitation_link, tenant_admin
from tests.support.workspace import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_invites_an_sdr_who_sets_a_password_and_lands_in_their_queue(
        page, browser, live_server, smtp_server, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = live_server.url
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    tenant_admin(tenant, "boss@acme.test")

    page.goto(f"{live_server.url}/accounts/login/?next=/team/")
    page.fill("#id_username", "boss@acme.test")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith("/team/")
    assert page.get_by_role("link", name="Team").get_attribute("aria-current") == "page"

    page.fill("#id_email", "nia.rep@acme.test")
    page.select_option("#id_role", Role.SDR.value)
    page.fill("#id_capacity", "20")
    with page.expect_navigation():
        page.click("#invite-form button[type=submit]")
    assert "Invitation sent to nia.rep@acme.test" in page.inner_text(".messages")
    assert page.locator("tr[data-invitation='nia.rep@acme.test']").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "team_page_laptop.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    [mail] = smtp_server.messages
    assert mail["to"] == ["nia.rep@acme.test"]
    link = invitation_link(mail["body"])

    invitee = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    try:
        invitee.goto(link)
        assert "Join Acme Corp" in invitee.inner_text("h1")
        invitee.fill("#id_first_name", "Nia")
        invitee.fill("#id_last_name", "Rep")
        invitee.fill("#id_new_password1", "password")
        invitee.fill("#id_new_password2", "password")
        with invitee.expect_navigation():
            invitee.click("#accept-form button[type=submit]")
        assert "too common" in invitee.inner_text("#accept-form")

        invitee.fill("#id_new_password1", "nia-chooses-a-long-one-42")
        invitee.fill("#id_new_password2", "nia-chooses-a-long-one-42")
        with invitee.expect_navigation():
            invitee.click("#accept-form button[type=submit]")
        assert invitee.url.endswith("/queue/")
        assert invitee.inner_text("[data-testid=active-tenant]") == "Acme Corp"
        assert "Welcome to Acme Corp" in invitee.inner_text(".messages")
        assert "Team" not in [a.inner_text() for a in invitee.locator("nav.mainnav a").all()]

        invitee.goto(link)
        assert "already been used" in invitee.inner_text("main")
    finally:
        invitee.context.close()

    nia = Membership.objects.unscoped().select_related("team").get(tenant=tenant, user__username="nia.rep@acme.test")
    assert (nia.role, nia.capacity, nia.is_active, nia.team.name) == ("sdr", 20, True, "Sales Development")
    lead = LeadFactory(tenant=tenant)
    lead_route(lead=lead, actor=SYSTEM, trigger="capture")
    assert Lead.objects.unscoped().get(pk=lead.pk).owner_id == nia.user_id, "the default round-robin reaches her"
