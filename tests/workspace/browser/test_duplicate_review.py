"""A manager reviews a possible duplicate in the browser, at laptop and phone width: the list, the side-by-side
page with a choice per field, the merge, the lead page with its history, and the undo from the timeline.
Screenshots: duplicates_{laptop,phone}.png, duplicate_review_{laptop,phone}.png, duplicate_merged_{laptop,phone}.png
under artifacts/screenshots/."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leads.models import DuplicatePair, Lead, LeadStatus
from leads.services.duplicates import duplicate_pairs_detect
from routing.defaults import routing_defaults_create
from tests.support.browser import ARTIFACTS
from tests.support.factories import (
    LeadFactory,
    MembershipFactory,
    TeamFactory,
    TenantFactory,
    UserFactory,
)
from tests.workspace.browser.test_phone_layout import LAPTOP, PHONE, no_sideways_scroll, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def floor():
    tenant = TenantFactory(slug="acme-corp", name="Acme Corp")
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    team = TeamFactory(tenant=tenant, name="Inbound EMEA")
    boss = UserFactory(username="maria.manager@acme.test", first_name="Maria", last_name="Manager")
    MembershipFactory(tenant=tenant, user=boss, role=Role.MANAGER, team=team)
    dana = UserFactory(username="dana@acme.test", first_name="Dana", last_name="Reyes")
    MembershipFactory(tenant=tenant, user=dana, role=Role.SDR, team=team)
    eli = UserFactory(username="eli@acme.test", first_name="Eli", last_name="Stone")
    MembershipFactory(tenant=tenant, user=eli, role=Role.SDR, team=team)
    rich = LeadFactory(tenant=tenant, owner=dana, team=team, first_name="Peter", last_name="Gibbons",
                       email="peter.gibbons@initech.example", phone="+14155550142", job_title="Software Engineer",
                       company="Initech International Holdings", company_size=450)
    thin = LeadFactory(tenant=tenant, owner=eli, team=team, first_name="Peter", last_name="Gibbons",
                       email="pgibbons@gmail.com", phone="+14155550142", industry="Software",
                       utm_campaign="tps-report-webinar")
    duplicate_pairs_detect(tenant=tenant)
    return {"tenant": tenant, "rich": rich, "thin": thin, "pair": DuplicatePair.objects.unscoped().get()}


@pytest.mark.parametrize("size,width", [(LAPTOP, "laptop"), (PHONE, "phone")])
def test_a_manager_merges_a_duplicate_and_undoes_it(page, live_server, floor, size, width):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rich, thin, pair = floor["rich"], floor["thin"], floor["pair"]
    page.set_viewport_size(size)
    sign_in(page, live_server.url, "maria.manager@acme.test", "/manager/duplicates/")
    row = page.locator(f"tr[data-pair-id='{pair.pk}']")
    assert "Same phone number" in row.inner_text() and "High" in row.inner_text()
    if width == "phone":
        no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"duplicates_{width}.png"), full_page=True)

    with page.expect_navigation():
        row.get_by_role("link", name="Review").click()
    # The richer lead is kept by default; each differing field offers both values, the filled one picked.
    assert page.locator(f"input[name=survivor][value='{rich.pk}']").is_checked()
    industry = page.locator("tr[data-field=industry] input:checked")
    assert industry.count() == 1 and industry.get_attribute("value") == ("other" if pair.lead_id == rich.pk else "lead")
    if width == "phone":
        no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"duplicate_review_{width}.png"), full_page=True)

    with page.expect_navigation():
        page.get_by_role("button", name="Merge into the kept lead").click()
    assert page.url.endswith(f"/leads/{rich.pk}/")
    assert "Merged Peter Gibbons" in page.locator(".messages").inner_text()
    assert "A duplicate lead was merged into this one" in page.locator("[data-testid=timeline]").inner_text()
    if width == "phone":
        no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / f"duplicate_merged_{width}.png"), full_page=True)
    assert Lead.objects.unscoped().get(pk=thin.pk).status == LeadStatus.ARCHIVED

    with page.expect_navigation():
        page.get_by_role("button", name="Undo this merge").click()
    assert page.url.endswith(f"/leads/{rich.pk}/")
    assert "Merge undone" in page.locator(".messages").inner_text()
    assert Lead.objects.unscoped().get(pk=thin.pk).status == LeadStatus.NEW
    assert Lead.objects.unscoped().get(pk=rich.pk).industry == ""
