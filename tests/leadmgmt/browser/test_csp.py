"""The Content-Security-Policy in a real browser: every page of every role (and the public pages) is served with
the policy header and runs under it without one refusal and without a JavaScript error.

A refusal shows twice: as a `securitypolicyviolation` event (caught by a listener the browser installs before
any page script) and as a console error ("Refused to execute inline script …"); both fail the test, as does
any other console error or uncaught exception. So a leftover inline <script>, <style>, style="" attribute,
on*= handler, eval (an htmx trigger filter) or a request to another host fails the role's tour, named with
the page it happened on.
"""
from __future__ import annotations

import re

import pytest
from django.core import mail

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.invitations import invitation_send
from leadmgmt.tenancy.models import Membership, Role, Team
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import LeadForm
from nurture import tokens
from nurture.models import Sequence
from scoring.models import ScoringModel
from scoring.services import scoring_model_draft_create
from tests.support.factories import LeadFactory
from tests.support.nurture import NurtureSettingsFactory, sent_message
from tests.support.workspace import PASSWORD, owned_lead
from workspace.models import ImportJob, ImportState
from workspace.services.imports import import_upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Installed by the browser before any script of each page (Playwright init scripts are not subject to the CSP).
VIOLATION_LISTENER = """
window.addEventListener("securitypolicyviolation", function (e) {
  window.leadmgmtCspViolation([e.effectiveDirective, "blocked", e.blockedURI || "inline",
                               "at", (e.sourceFile || "") + ":" + e.lineNumber, (e.sample || "").slice(0, 60)].join(" "));
}, true);
"""
# Chrome logs every 4xx answer as a console error; the tour asks for some on purpose (an invalid form, a bad link).
EXPECTED_4XX = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d ")
POLICY_PARTS = ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                "frame-ancestors 'none'", "form-action 'self'", "base-uri 'self'", "connect-src 'self'")


class Tour:
    """One browser page that records every refusal, console error and uncaught error, with the page's URL."""

    def __init__(self, page, base_url: str):
        self.page, self.base_url, self.problems, self.visited = page, base_url, [], []
        page.expose_function("leadmgmtCspViolation", lambda text: self.problems.append(f"{self._where()}: CSP {text}"))
        page.add_init_script(VIOLATION_LISTENER)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"{self._where()}: JS error {error}"))
        page.on("response", self._response)

    def _where(self) -> str:
        return self.page.url.removeprefix(self.base_url) or "/"

    def _console(self, message) -> None:
        if EXPECTED_4XX.match(message.text):
            return  # a page or form answer the tour asks for on purpose (its status is checked where it is asked)
        if message.type == "error" or "Content Security Policy" in message.text or "Refused to" in message.text:
            self.problems.append(f"{self._where()}: console {message.type}: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 500:
            self.problems.append(f"{self._where()}: {response.status} from {response.url}")

    def visit(self, path: str, *, status: int = 200, ready: str | None = None):
        """Open `path`, check its status and its policy header, and let its scripts run."""
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.status == status, (path, response and response.status)
        self.check_header(response, path)
        if ready:
            self.wait(ready)
        self.page.wait_for_load_state("load")
        self.visited.append(path)
        return response

    def wait(self, selector: str) -> None:
        """Wait for `selector`; when it never comes (a refused script never ran), say what the page refused."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_selector(selector)
        except PlaywrightTimeout:
            pytest.fail("\n".join([f"{self._where()}: {selector} never appeared", *self.problems]), pytrace=False)

    def check_header(self, response, path: str) -> None:
        policy = response.headers.get("content-security-policy", "")
        missing = [part for part in POLICY_PARTS if part not in policy]
        assert not missing, f"{path}: Content-Security-Policy {policy!r} lacks {missing}"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (path, policy)

    def submit(self, selector: str, *, status: int = 200) -> None:
        """Click a submit button that navigates; the answer carries the policy too."""
        with self.page.expect_navigation() as navigation:
            self.page.click(selector)
        response = navigation.value
        assert response is not None and response.status == status, (selector, response and response.status)
        self.check_header(response, selector)
        self.page.wait_for_load_state("load")

    def sign_in(self, username: str) -> None:
        self.visit("/accounts/login/?next=/queue/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.submit("main button[type=submit]")
        assert self.page.url.endswith("/queue/"), self.page.url

    def sign_out(self) -> None:
        self.submit("header .usermenu button:has-text('Sign out')")
        assert "signed out" in self.page.inner_text("h1").lower()

    def wait_for_poll(self, part: str) -> None:
        """A live region (polled by htmx every LIVE_POLL_SECONDS) asks for its partial again: htmx runs."""
        with self.page.expect_response(lambda r: part in r.url, timeout=8_000):
            pass

    def open_action_forms(self) -> int:
        """Unfold every folded action of the lead page (each a <details> with its form); how many there are."""
        actions = self.page.locator("details.action")
        for index in range(actions.count()):
            action = actions.nth(index)
            if action.is_visible() and action.get_attribute("open") is None:
                action.locator("> summary").click()
        return actions.count()

    def assert_clean(self) -> None:
        self.page.wait_for_timeout(300)  # late events (a worker, a poll) of the last page
        if self.problems:
            pytest.fail("\n".join([f"pages: {self.visited}", *self.problems]), pytrace=False)


def _member(tenant, email: str, role: str, team_name: str | None = None):
    return membership_upsert(tenant=tenant, email=email, role=role, team_name=team_name, password=PASSWORD)[0].user


@pytest.fixture
def org(settings, live_server):
    settings.LIVE_POLL_SECONDS = 1
    settings.PUBLIC_BASE_URL = live_server.url
    provisioned = tenant_create(slug="csp-corp", name="CSP Corp", admin_email="admin@csp.test",
                                admin_password=PASSWORD)
    tenant = provisioned.tenant
    manager = _member(tenant, "manager@csp.test", Role.MANAGER, DEFAULT_TEAM)
    Team.objects.unscoped().filter(tenant=tenant, name=DEFAULT_TEAM).update(manager=manager)
    sdr = _member(tenant, "sdr@csp.test", Role.SDR, DEFAULT_TEAM)
    ae = _member(tenant, "ae@csp.test", Role.AE, "Account Executives")
    _member(tenant, "ops@csp.test", Role.MARKETING_OPS)
    leads = {
        "sdr": owned_lead(tenant, sdr, first_name="Ada", last_name="Lovelace", email="ada@buyer.example",
                          company="Buyer Inc", country="US", marketing_consent=True),
        "ae": owned_lead(tenant, ae, first_name="Grace", last_name="Hopper", email="grace@buyer.example",
                         company="Buyer Inc", country="US"),
        "unassigned": LeadFactory(tenant=tenant, first_name="Alan", last_name="Turing", email="alan@buyer.example",
                                  stage="mql", band="hot"),
    }
    NurtureSettingsFactory(tenant=tenant)
    message = sent_message(tenant=tenant)
    return {"tenant": tenant, "leads": leads, "url": live_server.url, "message": message,
            "sdr_membership": Membership.objects.unscoped().get(tenant=tenant, user=sdr)}


def _rep_tour(tour: Tour, org, username: str, lead) -> None:
    tour.sign_in(username)
    tour.wait_for_poll("/notifications/bell/")  # the bell polls under the policy (no eval'd trigger filter)
    tour.visit(f"/leads/{lead.pk}/", ready="[data-testid=actions]")
    assert tour.open_action_forms() >= 3
    # The edit form posts with htmx; its 400 replaces the form in place (app.js, no hx-on handler).
    tour.page.fill("#edit-form input[name=edit-email]", "not an email")
    with tour.page.expect_response(lambda r: r.url.endswith("/edit/") and r.status == 400):
        tour.page.click("#edit-form button[type=submit]")
    tour.wait("#edit-form .field-error, #edit-form .form-errors")
    tour.visit("/queue/", ready="#queue-table")
    tour.visit("/dashboard/me/", ready="main h1")
    tour.visit("/notifications/", ready="main h1")
    tour.sign_out()


def test_an_sdr_works_every_page_under_the_policy(page, org):
    tour = Tour(page, org["url"])
    _rep_tour(tour, org, "sdr@csp.test", org["leads"]["sdr"])
    tour.assert_clean()


def test_an_ae_works_every_page_under_the_policy(page, org):
    tour = Tour(page, org["url"])
    _rep_tour(tour, org, "ae@csp.test", org["leads"]["ae"])
    tour.assert_clean()


def test_a_manager_works_every_page_under_the_policy(page, org):
    tour = Tour(page, org["url"])
    tour.sign_in("manager@csp.test")
    tour.visit("/manager/", ready="#queue-results")
    tour.wait_for_poll("/manager/?")  # the live manager lists poll too
    for path in ("/manager/unassigned/", "/manager/escalations/", "/manager/aging/", "/manager/hot/", "/manager/reps/"):
        tour.visit(path, ready="main h1")
    lead = org["leads"]["unassigned"]
    tour.visit(f"/manager/leads/{lead.pk}/reassign/?next=/manager/unassigned/", ready="main form")
    tour.visit(f"/manager/reps/{org['sdr_membership'].pk}/availability/", ready="main form")
    tour.visit("/dashboard/", ready="[data-testid=chart-volume] svg")
    tour.visit(f"/dashboard/reps/{org['sdr_membership'].pk}/", ready="main h1")
    tour.visit(f"/leads/{org['leads']['sdr'].pk}/", ready="[data-testid=actions]")
    tour.open_action_forms()
    tour.visit("/notifications/", ready="main h1")
    tour.sign_out()
    tour.assert_clean()


def _admin_tour(tour: Tour, org) -> None:
    tenant = org["tenant"]
    tour.visit("/admin/", ready="#content-main")
    form = LeadForm.objects.unscoped().filter(tenant=tenant).first()
    tour.visit("/admin/leads/leadform/", ready="#changelist")
    tour.visit(f"/admin/leads/leadform/{form.pk}/change/", ready="#lead-form-snippet")
    tour.page.click("[data-copy-snippet]")  # the copy button's script (static/js/lead_form_snippet.js) runs
    tour.wait("[data-copy-status]:not(:empty)")
    sequence = Sequence.objects.unscoped().filter(tenant=tenant).first()
    tour.visit(f"/admin/nurture/sequence/{sequence.pk}/change/", ready=".nurture-help")
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    tour.visit(f"/admin/scoring/scoringmodel/{draft.pk}/change/", ready="#rules-help")
    tour.visit(f"/admin/scoring/scoringmodel/{draft.pk}/publish/", ready="#content-main")
    published = ScoringModel.objects.unscoped().filter(tenant=tenant).exclude(pk=draft.pk).first()
    tour.visit(f"/admin/scoring/scoringmodel/{published.pk}/change/", ready="#content-main")
    tour.visit("/admin/routing/routingrule/dry-run/", ready="#dry-run-form")
    tour.page.fill("#dry-run-form input[name=lead_id]", str(org["leads"]["sdr"].pk))
    tour.submit("#dry-run-form input[type=submit]")
    tour.wait("#dry-run-result")
    lead = org["leads"]["sdr"]
    tour.visit("/admin/leads/lead/", ready="#changelist")
    tour.visit(f"/admin/leads/lead/{lead.pk}/change/", ready="#content-main")


def test_marketing_ops_works_every_page_under_the_policy(page, org):
    tour = Tour(page, org["url"])
    tour.sign_in("ops@csp.test")
    # The import pages: the list and upload form, the mapping step, a running import's progress bar polled by htmx.
    ops = Membership.objects.unscoped().get(tenant=org["tenant"], role=Role.MARKETING_OPS).user
    mapping, running = (import_upload(tenant=org["tenant"], actor=Actor.for_user(ops), file_name=f"{name}.csv",
                                      content=b"email,first_name\nx@buyer.example,X\n") for name in ("map", "run"))
    ImportJob.objects.unscoped().filter(pk=running.pk).update(state=ImportState.RUNNING)
    tour.visit("/imports/", ready="#upload-form")
    tour.visit(f"/imports/{mapping.pk}/", ready="#mapping-form")
    tour.visit(f"/imports/{running.pk}/", ready="#import-bar")
    tour.wait_for_poll(f"/imports/{running.pk}/progress/")
    tour.visit("/dashboard/", ready="[data-testid=chart-volume] svg")
    tour.visit(f"/leads/{org['leads']['sdr'].pk}/", ready="main h1")
    tour.open_action_forms()
    tour.visit("/notifications/", ready="main h1")
    _admin_tour(tour, org)
    tour.visit("/queue/", ready="main h1")
    tour.sign_out()
    tour.assert_clean()


def test_a_tenant_admin_works_every_page_under_the_policy(page, org):
    tour = Tour(page, org["url"])
    tour.sign_in("admin@csp.test")
    tour.visit("/team/", ready="main h1")
    tour.visit(f"/team/members/{org['sdr_membership'].pk}/", ready="main h1")
    tour.visit("/manager/", ready="main h1")
    tour.visit("/dashboard/", ready="[data-testid=chart-volume] svg")
    tour.visit(f"/leads/{org['leads']['unassigned'].pk}/", ready="main h1")
    tour.open_action_forms()
    _admin_tour(tour, org)
    tour.visit("/admin/tenancy/membership/", ready="#changelist")
    tour.visit("/admin/audit/auditevent/", ready="#changelist")
    tour.visit("/queue/", ready="main h1")
    tour.sign_out()
    tour.assert_clean()


def test_public_pages_and_the_api_docs_run_under_the_policy(page, org):
    tour = Tour(page, org["url"])
    tour.visit("/accounts/login/", ready="#id_username")
    tour.visit("/accounts/password_reset/", ready="input[name=email]")
    tour.page.fill("input[name=email]", "sdr@csp.test")
    tour.submit("input[type=submit], button[type=submit]")
    reset_link = re.search(r"https?://[^/\s]+(/\S+/reset/\S+/)", mail.outbox[-1].body).group(1)
    tour.visit(reset_link, ready="input[name=new_password1]")  # the set-password form, from the email
    # nurture's public pages, from the links of an email
    message = org["message"]
    tour.visit(f"/n/u/{tokens.unsubscribe_token(message.pk)}/", ready="[data-testid=unsubscribe-button]")
    tour.submit("[data-testid=unsubscribe-button]")
    tour.visit("/n/u/not-a-token/", status=400, ready="main h1")
    # an invitation link, opened signed out
    link = invitation_send(tenant=org["tenant"], email="new@csp.test", role=Role.SDR, actor=Actor.for_user(
        Membership.objects.unscoped().get(tenant=org["tenant"], role=Role.ADMIN).user)).link
    tour.visit(re.sub(r"^https?://[^/]+", "", link), ready="#invitation")
    tour.visit("/invite/not-a-token/", status=400, ready="main h1")
    # a plain HTML form posted from another site lands on the intake's own page (here: refused, 4xx)
    form = LeadForm.objects.unscoped().filter(tenant=org["tenant"]).first()
    tour.page.set_content(f'<form method="post" action="{org["url"]}/api/v1/intake/">'
                          f'<input name="form_key" value="{form.key}"><input name="email" value="not an email">'
                          '<button type="submit">Send</button></form>')
    with tour.page.expect_navigation() as navigation:
        tour.page.click("button")
    assert navigation.value.status >= 400
    tour.check_header(navigation.value, "intake result")
    tour.wait("h1")
    # the API docs, both renderers, offline
    tour.visit("/api/redoc/", ready="text=leadmgmt API")
    tour.page.wait_for_load_state("networkidle")
    tour.visit("/api/docs/", ready=".swagger-ui .info")
    tour.page.wait_for_load_state("networkidle")
    tour.assert_clean()
