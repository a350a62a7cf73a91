"""A rep's day in the browser: sign in, the queue in SLA order (htmx search), log a call on the top lead and see
its SLA clock stop, reject another lead with a reason. Saves laptop-width screenshots of the queue and lead page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStatus
from routing.defaults import routing_defaults_create
from routing.models import SlaClock
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.factories import AccountFactory, MembershipFactory, TenantFactory, UserFactory
from tests.support.workspace import PASSWORD, owned_lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rep_signs_in_works_the_top_lead_and_rejects_another(page, live_server):
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    rep = UserFactory(username="dana@acme.test", email="dana@acme.test", first_name="Dana", last_name="Reyes")
    MembershipFactory(tenant=tenant, user=rep, role=Role.SDR)
    account = AccountFactory(tenant=tenant, domain="initech.example", name="Initech")
    top = owned_lead(tenant, rep, due_in=timedelta(minutes=-4), first_name="Peter", last_name="Gibbons",
                     company="Initech", account=account, score=82, band="hot", lead_class="high_fit",
                     job_title="VP Engineering", source="webinar", lead_class_reason="Senior buyer at an ICP company")
    second = owned_lead(tenant, rep, due_in=timedelta(minutes=12), first_name="Joanna", last_name="Lee",
                        company="Chotchkie's", score=64, band="warm", lead_class="nurture", source="web_form")
    third = owned_lead(tenant, rep, due_in=timedelta(hours=3), first_name="Bill", last_name="Lumbergh",
                       company="Initech", account=account, score=35, band="cold", lead_class="future_fit",
                       source="web_form")
    page.set_viewport_size({"width": 1366, "height": 768})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # Sign in: lands on My queue with the workspace shown.
    page.goto(f"{live_server.url}/queue/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "dana@acme.test")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/queue/")
    assert page.inner_text("[data-testid=active-tenant]") == "Acme Corp"

    # SLA order; the overdue lead stands out once the countdown script has run.
    rows = page.locator("tbody tr")
    assert [rows.nth(i).get_attribute("data-lead-id") for i in range(rows.count())] == [
        str(top.pk), str(second.pk), str(third.pk)]
    page.wait_for_selector(f"tr[data-lead-id='{top.pk}'] .countdown.overdue")
    assert "overdue by" in page.inner_text(f"tr[data-lead-id='{top.pk}'] .countdown")
    assert "left" in page.inner_text(f"tr[data-lead-id='{second.pk}'] .countdown")
    page.screenshot(path=str(ARTIFACTS / "queue_laptop.png"))

    # Search updates the table through htmx, without a full page load.
    page.evaluate("window.__sameDocument = true")
    page.fill("#id_q", "lumbergh")
    wait_for_js(page, "document.querySelectorAll('tbody tr').length === 1")
    assert page.get_attribute("tbody tr", "data-lead-id") == str(third.pk)
    assert page.evaluate("window.__sameDocument") is True and "q=lumbergh" in page.url
    page.fill("#id_q", "")
    wait_for_js(page, "document.querySelectorAll('tbody tr').length === 3")

    # Open the top lead: its SLA clock runs; log a call and see it stop.
    with page.expect_navigation():
        page.click(f"tr[data-lead-id='{top.pk}'] a")
    assert page.url.endswith(f"/leads/{top.pk}/")
    page.wait_for_selector("[data-testid=sla-state] .countdown.overdue")
    page.screenshot(path=str(ARTIFACTS / "lead_page_laptop.png"))
    page.select_option("#id_kind", "call")
    page.select_option("#id_outcome", "connected")
    page.fill("#id_body", "Spoke with Peter; demo next week.")
    with page.expect_navigation():
        page.click("details[data-action=log] button[type=submit]")
    assert "Call logged." in page.inner_text(".messages")
    assert page.inner_text("[data-testid=sla-stopped]") == "Stopped: first contact"
    assert "Spoke with Peter" in page.inner_text("[data-testid=timeline]")
    assert not SlaClock.objects.unscoped().filter(lead=top, stopped_at__isnull=True).exists()
    assert Lead.objects.unscoped().get(pk=top.pk).status == LeadStatus.CONTACTED
    page.screenshot(path=str(ARTIFACTS / "lead_page_after_call_laptop.png"))

    # Edit details in place (htmx): a bad email comes back beside its field, nothing saved; then the new job
    # title is saved and shows in the contact card.
    page.evaluate("window.__sameDocument = true")
    page.click("details[data-action=edit] > summary")
    page.fill("#id_edit-job_title", "CTO")
    page.fill("#id_edit-email", "not-an-email")
    page.click("details[data-action=edit] button[type=submit]")
    page.wait_for_selector("#id_edit-email_error")
    assert page.evaluate("document.activeElement.id") == "id_edit-email"  # focus on the field to fix
    assert Lead.objects.unscoped().get(pk=top.pk).job_title == "VP Engineering"
    page.fill("#id_edit-email", top.email)
    page.click("details[data-action=edit] button[type=submit]")
    page.locator(".messages", has_text="Details saved.").wait_for()
    assert "CTO" in page.inner_text("section[aria-labelledby=contact-h] dl")
    assert page.evaluate("window.__sameDocument") is True  # swapped by htmx, no page load
    assert Lead.objects.unscoped().get(pk=top.pk).job_title == "CTO"

    # Reject another lead with a reason from the taxonomy: back to the queue, the lead is gone from it.
    page.goto(f"{live_server.url}/leads/{second.pk}/")
    page.click("details[data-action=reject] > summary")
    page.select_option("#id_reject-reason", "spam")
    page.fill("#id_reject-note", "Bot sign-up")
    with page.expect_navigation():
        page.click("details[data-action=reject] button[type=submit]")
    assert page.url.endswith("/queue/")
    assert "Lead rejected" in page.inner_text(".messages")
    assert page.locator(f"tr[data-lead-id='{second.pk}']").count() == 0
    rejected = Lead.objects.unscoped().get(pk=second.pk)
    assert (rejected.status, rejected.rejection_reason) == (LeadStatus.REJECTED, "spam")
    assert timezone.now() - rejected.rejected_at < timedelta(minutes=5)

    # The queue at phone width: no horizontal page scroll, the table still readable.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/queue/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(ARTIFACTS / "queue_phone.png"), full_page=True)
