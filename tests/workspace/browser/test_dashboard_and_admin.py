"""Issue 5 in a real browser: a manager's dashboard, marketing ops re-weighting the scoring model in
admin (draft → change a weight → publish → the lead's score changes), and tenant isolation in admin.

A failing test leaves a screenshot under artifacts/screenshots/ (tests/support/browser.py); the
dashboard test also saves artifacts/screenshots/dashboard.png at laptop width (1366×768).
"""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import membership_upsert, tenant_create
from leads.models import Lead, StageTransition
from routing.models import SlaClock
from scoring.models import ModelStatus, ScoringModel
from scoring.services import leads_score
from tests.support.browser import ARTIFACTS
from tests.support.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
VP_RULE = "Title: VP/Director"


def sign_in_with_session(page, live_server, user) -> None:
    """A non-staff user (the manager) signs in through Django's test client; the browser gets its cookie."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value,
                               "url": live_server.url}])


def admin_sign_in(page, live_server, email: str, next_url: str = "/admin/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")


def dashboard_data(tenant) -> None:
    """A month of leads from four sources moving through the funnel, some SLA clocks and rejections."""
    now = timezone.now()
    sources = ["web_form", "webinar", "partner", "trade_show"]
    for i in range(36):
        created = now - dt.timedelta(days=i % 28, hours=i % 5)
        stage = ["raw", "mql", "mql", "sal", "sql", "opportunity"][i % 6]
        status = {"sql": "qualified", "opportunity": "converted"}.get(stage, "new")
        rejected = i % 9 == 8
        lead = LeadFactory(
            tenant=tenant, created_at=created, source=sources[i % 4 if i % 3 else 0], stage=stage,
            status="rejected" if rejected else status, rejection_reason=("bad_fit" if i % 2 else "no_budget")
            if rejected else "", first_contacted_at=created + dt.timedelta(minutes=3 + i * 7) if i % 4 else None,
            last_activity_at=created + dt.timedelta(hours=i % 7),
        )
        previous, at = "raw", created
        for step in ["mql", "sal", "sql", "opportunity"][: ["raw", "mql", "sal", "sql", "opportunity"].index(stage)]:
            at = at + dt.timedelta(hours=2 + i % 11)
            StageTransition.objects.unscoped().create(tenant=tenant, lead=lead, from_stage=previous, to_stage=step,
                                                      at=at, actor_name="test")
            previous = step
        if i % 2:
            SlaClock.objects.unscoped().create(
                tenant=tenant, lead=lead, kind="first_contact", started_at=created,
                due_at=created + dt.timedelta(minutes=30),
                stopped_at=created + dt.timedelta(minutes=10 if i % 3 else 50), stop_reason="first_contact")


def test_manager_opens_the_dashboard_and_sees_the_charts(page, live_server):
    acme = tenant_create(slug="acme-dash", name="Acme Dashboards", admin_email="admin@acme-dash.test",
                         admin_password=PASSWORD)
    manager = membership_upsert(tenant=acme.tenant, email="manager@acme-dash.test", role=Role.MANAGER,
                                password=PASSWORD)[0].user
    dashboard_data(acme.tenant)
    other = tenant_create(slug="other-dash", name="Other Co", admin_email="admin@other-dash.test",
                          admin_password=PASSWORD)
    LeadFactory(tenant=other.tenant, source="other-tenant-source", created_at=timezone.now())

    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in_with_session(page, live_server, manager)
    response = page.goto(f"{live_server.url}/dashboard/")

    assert response.status == 200
    assert page.locator("h1").first.inner_text() == "Dashboards"
    for chart in ("volume", "funnel", "velocity", "aging", "rejections"):
        assert page.locator(f"[data-testid=chart-{chart}] svg[role=img]").count() == 1, chart
    assert page.locator("[data-testid=kpi]").count() == 5
    assert page.locator("[data-testid=chart-volume] svg title").first.text_content() == \
        "Leads captured per day by source"
    body = page.inner_text("main")
    assert "Leads captured" in body and "36" in body
    assert "other-tenant-source" not in page.content()
    assert page.locator("[data-testid=response-median]").inner_text() != "—"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    page.screenshot(path=str(ARTIFACTS / "dashboard-full.png"), full_page=True)

    # The date range is a plain GET form; a bad one is refused beside its field.
    page.fill("#id_start", "2026-03-10")
    page.fill("#id_end", "2026-03-01")
    with page.expect_navigation():
        page.click("button:has-text('Show')")
    assert page.locator("#id_start-error").inner_text() == "The start date must be on or before the end date."

    # Phone width: one column, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/dashboard/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)


def test_a_rep_opening_the_dashboard_sees_their_own_numbers(page, live_server):
    acme = tenant_create(slug="acme-rep", name="Acme Reps", admin_email="admin@acme-rep.test",
                         admin_password=PASSWORD)
    rep = membership_upsert(tenant=acme.tenant, email="sdr@acme-rep.test", role=Role.SDR, password=PASSWORD)[0].user
    sign_in_with_session(page, live_server, rep)
    response = page.goto(f"{live_server.url}/dashboard/")
    assert response.status == 200 and page.url.endswith("/dashboard/me/")
    assert "My numbers" in page.inner_text("h1")
    assert "Leads captured" not in page.content()  # the tenant-wide figures stay with managers


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_marketing_ops_changes_a_weight_publishes_and_the_lead_score_changes(page, live_server):
    acme = tenant_create(slug="acme-ops", name="Acme Ops", admin_email="admin@acme-ops.test",
                         admin_password=PASSWORD)
    membership_upsert(tenant=acme.tenant, email="ops@acme-ops.test", role=Role.MARKETING_OPS, password=PASSWORD)
    lead = LeadFactory(tenant=acme.tenant, email="vp@buyer.example", job_title="VP Marketing", company_size=600,
                       industry="Software", country="US")
    leads_score(tenant=acme.tenant, cause="manual", actor=SYSTEM)
    lead.refresh_from_db()
    before, published = lead.score, lead.scoring_model_id
    assert before is not None

    admin_sign_in(page, live_server, "ops@acme-ops.test", "/admin/scoring/scoringmodel/add/")
    assert page.url.endswith("/admin/scoring/scoringmodel/add/")
    # The add form starts a draft copied from the published version.
    with page.expect_navigation():
        page.click("input[name=_save]")
    assert "Draft v2 created" in page.inner_text(".messagelist")
    draft = ScoringModel.objects.unscoped().get(tenant=acme.tenant, status=ModelStatus.DRAFT)

    prefix = page.eval_on_selector_all(
        "input[name$='-name']", "(els, name) => els.find(e => e.value === name).name.replace(/-name$/, '')", VP_RULE)
    page.fill(f"input[name='{prefix}-points']", "35")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert page.locator(".errornote").count() == 0, page.inner_text("#content")
    assert page.input_value(f"input[name='{prefix}-points']") == "35"

    with page.expect_navigation():
        page.click("text=Review what-if and publish…")
    assert page.locator("#whatif").is_visible()
    assert "20 → 35" in page.inner_text("#rule-changes")
    with page.expect_navigation():
        page.click("input[name=publish]")
    assert "is now the active scoring model" in page.inner_text(".messagelist")

    # Publishing enqueues the whole-tenant re-score on commit; Celery is eager in the live server's thread.
    rescored = wait_for(lambda: Lead.objects.unscoped().filter(pk=lead.pk, scoring_model_id=draft.pk).first())
    assert rescored.score == min(before + 15, 100) and published != draft.pk

    page.goto(f"{live_server.url}/admin/leads/lead/{lead.pk}/change/")
    text = page.inner_text("#content")
    assert VP_RULE in text and "+35" in text and f"v{draft.version}" in text


def test_a_user_of_tenant_a_cannot_open_tenant_b_lead_admin_page(page, live_server):
    tenant_create(slug="tenant-a", name="Tenant A", admin_email="admin@tenant-a.test", admin_password=PASSWORD)
    b = tenant_create(slug="tenant-b", name="Tenant B", admin_email="admin@tenant-b.test", admin_password=PASSWORD)
    theirs = LeadFactory(tenant=b.tenant, email="secret@tenant-b.example", company="B Secret Co")

    admin_sign_in(page, live_server, "admin@tenant-a.test")
    page.goto(f"{live_server.url}/admin/leads/lead/{theirs.pk}/change/")
    content = page.content()
    assert "secret@tenant-b.example" not in content and "B Secret Co" not in content
    assert "doesn’t exist" in content or "doesn't exist" in content or "Not Found" in content
    page.goto(f"{live_server.url}/admin/leads/lead/")
    assert "secret@tenant-b.example" not in page.content()
    # The rep UI's lead page answers 404 as well.
    response = page.goto(f"{live_server.url}/leads/{theirs.pk}/")
    assert response.status == 404
    assert "secret@tenant-b.example" not in page.content()
