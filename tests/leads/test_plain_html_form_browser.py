"""A plain HTML form on another site posts a lead: 303 to its success page, then the lead is in admin and the API."""
from __future__ import annotations

import functools
import http.server
import json
import threading
import urllib.request

import pytest

from leadmgmt.tenancy.services import tenant_create
from leads.models import Lead

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORM_PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<h1>Talk to sales</h1>
<form method="post" action="{action}">
  <input type="hidden" name="form_key" value="{form_key}">
  <input name="first_name" id="first_name">
  <input name="last_name" id="last_name">
  <input name="email" id="email" type="email">
  <input name="company" id="company">
  <input name="job_title" id="job_title">
  <label><input type="checkbox" name="marketing_consent" value="yes" id="consent"> Keep me posted</label>
  <input name="website_url" style="display:none" tabindex="-1" autocomplete="off">
  <button type="submit" id="send">Send</button>
</form></body></html>"""


@pytest.fixture
def other_site(tmp_path):
    """A second origin (a customer's website) served by a plain static file server."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "thanks.html").write_text("<!doctype html><h1>Thanks, we will be in touch</h1>")
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_plain_html_form_creates_a_lead_seen_in_admin_and_api(page, live_server, other_site):
    site_dir, site_origin = other_site
    provisioned = tenant_create(
        slug="formco", name="Form Co", admin_email="admin@formco.test", admin_password="correct-horse-battery",
        allowed_origins=[site_origin],
    )
    from leads.models import LeadForm

    form = LeadForm.objects.unscoped().get(key=provisioned.form_key)
    form.success_url = f"{site_origin}/thanks.html"
    form.save(update_fields=["success_url"])
    (site_dir / "contact.html").write_text(
        FORM_PAGE.format(action=f"{live_server.url}/api/v1/intake/", form_key=provisioned.form_key)
    )

    page.goto(f"{site_origin}/contact.html")
    page.fill("#first_name", "Zoë")
    page.fill("#last_name", "O'Neil")
    page.fill("#email", "Zoe.ONeil@Big-Buyer.test")
    page.fill("#company", "Big Buyer")
    page.fill("#job_title", "VP Operations")
    page.check("#consent")
    with page.expect_navigation():
        page.click("#send")
    assert page.url == f"{site_origin}/thanks.html"
    assert "Thanks" in page.inner_text("h1")

    lead = Lead.objects.unscoped().get(tenant=provisioned.tenant)
    assert (lead.email, lead.first_name, lead.company_domain) == ("zoe.oneil@big-buyer.test", "Zoë", "big-buyer.test")
    assert lead.marketing_consent is True

    page.goto(f"{live_server.url}/admin/login/?next=/admin/leads/lead/")
    page.fill("#id_username", "admin@formco.test")
    page.fill("#id_password", "correct-horse-battery")
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert "zoe.oneil@big-buyer.test" in page.content()

    request = urllib.request.Request(
        f"{live_server.url}/api/v1/leads/", headers={"Authorization": f"Bearer {provisioned.api_key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data = json.load(response)
    assert [row["email"] for row in data["results"]] == ["zoe.oneil@big-buyer.test"]
