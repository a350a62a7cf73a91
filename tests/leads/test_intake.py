"""The intake endpoint: content types, form keys, redirects, honeypot, idempotency, CORS, throttling."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leadmgmt.audit.models import AuditEvent
from leads.models import Account, IdempotencyRecord, Lead, Touch, TouchKind
from leads.throttles import IntakeFormRateThrottle, IntakeIpRateThrottle
from tests.support.factories import LeadFactory, LeadFormFactory
from tests.support.intake import ALLOWED_ORIGIN, INTAKE_URL, post_form, post_json, row_counts

pytestmark = pytest.mark.django_db

ADA = {"email": "Ada@Analytical.example", "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines"}


@pytest.fixture
def client():
    return Client()


def test_json_post_creates_a_lead(client, lead_form):
    response = post_json(client, ADA, form=lead_form)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["result"] == "created"
    lead = Lead.objects.unscoped().get(pk=uuid.UUID(body["id"]))
    assert (lead.tenant, lead.email, lead.first_name, lead.form) == (lead_form.tenant, "ada@analytical.example", "Ada", lead_form)
    assert lead.account.domain == "analytical.example" and lead.account.name == "Analytical Engines"


def test_urlencoded_post_creates_a_lead_with_key_in_a_field(client, lead_form):
    response = post_form(client, {"Email": "grace@navy.example", "firstname": "Grace", "lastname": "Hopper"}, form=lead_form)
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.email, lead.first_name, lead.last_name) == ("grace@navy.example", "Grace", "Hopper")


def test_multipart_post_creates_a_lead(client, lead_form):
    response = post_form(client, {"email": "alan@bletchley.example", "name": "Alan Mathison Turing"}, form=lead_form, multipart=True)
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.first_name, lead.last_name) == ("Alan", "Mathison Turing")


def test_form_key_in_header_or_query_parameter(client, lead_form):
    assert post_json(client, {"email": "one@x-corp.example"}, HTTP_X_FORM_KEY=lead_form.key).status_code == 201
    response = client.post(f"{INTAKE_URL}?form_key={lead_form.key}", data={"email": "two@x-corp.example"},
                           content_type="application/json")
    assert response.status_code == 201
    assert Lead.objects.unscoped().filter(tenant=lead_form.tenant, account__domain="x-corp.example").count() == 2


def test_duplicate_email_is_merged_with_200(client, lead_form):
    first = post_json(client, ADA, form=lead_form).json()
    response = post_json(client, {"email": " ADA@analytical.EXAMPLE ", "job_title": "Analyst"}, form=lead_form)
    assert response.status_code == 200
    assert response.json() == {"id": first["id"], "result": "merged"}
    lead = Lead.objects.unscoped().get(pk=first["id"])
    assert lead.job_title == "Analyst"
    assert list(Touch.objects.unscoped().filter(lead=lead).order_by("received_at").values_list("kind", flat=True)) == [TouchKind.CREATED, TouchKind.DUPLICATE]


def test_all_common_aliases_are_understood(client, lead_form):
    response = post_form(client, {
        "E-mail": "Linus@Kernel.example", "given_name": "Linus", "surname": "Torvalds", "telephone": "(415) 555-0123",
        "organization": "Kernel Org", "title": "Maintainer", "employees": "1,200", "industry": "Software",
        "country": "USA", "utm_source": "newsletter", "utmMedium": "email", "utm_campaign": "spring",
        "campaign": "Launch", "consent": "on", "page_url": "https://www.acme-site.test/pricing",
        "how_did_you_hear": "a friend",
    }, form=lead_form)
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert lead.email == "linus@kernel.example"
    assert (lead.first_name, lead.last_name, lead.phone) == ("Linus", "Torvalds", "+14155550123")
    assert (lead.company, lead.job_title, lead.company_size, lead.industry) == ("Kernel Org", "Maintainer", 1200, "Software")
    assert (lead.country, lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("US", "newsletter", "email", "spring")
    assert lead.campaign == "Launch" and lead.source == lead_form.default_source
    assert lead.marketing_consent and lead.consent_at is not None
    assert lead.consent_source == "Form Website (https://www.acme-site.test/pricing)"
    assert lead.attributes == {"how_did_you_hear": "a friend"}


def test_country_sets_the_phone_region(client, lead_form):
    response = post_json(client, {"phone": "030 1234567", "country": "Germany"}, form=lead_form)
    assert response.status_code == 201
    assert Lead.objects.unscoped().get(pk=response.json()["id"]).phone == "+49301234567"


def test_unicode_names_and_idn_domains_are_accepted(client, lead_form):
    response = post_json(client, {"email": "jurgen@Bücher.example", "first_name": "Jürgen", "last_name": "Ødegård-Łukasiewicz",
                                  "company": "東京ソフト株式会社", "website": "https://www.bücher.example/"}, form=lead_form)
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.first_name, lead.last_name, lead.company) == ("Jürgen", "Ødegård-Łukasiewicz", "東京ソフト株式会社")
    assert lead.email == "jurgen@xn--bcher-kva.example"
    assert lead.account.domain == "xn--bcher-kva.example"
    again = post_json(client, {"email": "jurgen@xn--bcher-kva.example"}, form=lead_form)
    assert again.json() == {"id": str(lead.pk), "result": "merged"}


def test_sql_and_html_looking_strings_are_stored_verbatim(client, lead_form):
    evil_name = "Robert'); DROP TABLE leads_lead;--"
    evil_company = '<script>alert("x")</script> & <b>Co</b>'
    response = post_json(client, {"email": "bobby@tables.example", "first_name": evil_name, "company": evil_company,
                                  "message": "<img src=x onerror=alert(1)>"}, form=lead_form)
    assert response.status_code == 201
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.first_name, lead.company) == (evil_name, evil_company)
    assert lead.attributes["message"] == "<img src=x onerror=alert(1)>"
    assert Lead.objects.unscoped().count() == 1


def test_control_characters_are_stripped(client, lead_form):
    response = post_json(client, {"email": "ctrl@chars.example", "first_name": "Ada\x07\x1b", "last_name": "Love\u202elace"}, form=lead_form)
    assert response.status_code == 201
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert (lead.first_name, lead.last_name) == ("Ada", "Love lace")


def test_touch_keeps_the_raw_payload_and_request_facts(client, lead_form):
    payload = {"email": "raw@payload.example", "First Name": "Raw", "extra": {"nested": [1, 2]}}
    response = post_json(client, payload, form=lead_form, HTTP_USER_AGENT="Mozilla/5.0 test", REMOTE_ADDR="203.0.113.9")
    touch = Touch.objects.unscoped().get(lead_id=response.json()["id"])
    assert touch.payload == payload
    assert (touch.form, touch.source, touch.ip_address, touch.user_agent) == (lead_form, "web_form", "203.0.113.9", "Mozilla/5.0 test")


def test_audit_events_are_written_under_the_form_actor(client, lead_form):
    lead_id = post_json(client, ADA, form=lead_form).json()["id"]
    post_json(client, {"email": ADA["email"], "phone": "+1 415 555 0199"}, form=lead_form)
    events = AuditEvent.objects.unscoped().filter(tenant=lead_form.tenant).order_by("id")
    assert [(e.action, e.actor_kind, e.actor_name) for e in events] == [
        ("account.created", "form", "Form Website"),
        ("lead.created", "form", "Form Website"),
        ("lead.merged", "form", "Form Website"),
    ]
    created, merged = events[1], events[2]
    assert created.object_id == lead_id and created.changes["email"] == [None, "ada@analytical.example"]
    assert merged.changes == {"phone": ["", "+14155550199"]} and merged.metadata["matched_on"] == "email"


# --- plain HTML form posts -----------------------------------------------------------------

BROWSER = {"HTTP_SEC_FETCH_MODE": "navigate", "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_browser_form_post_is_redirected_to_the_success_url(client, lead_form):
    response = post_form(client, {"email": "browser@form.example"}, form=lead_form, HTTP_ORIGIN=ALLOWED_ORIGIN, **BROWSER)
    assert response.status_code == 303
    assert response["Location"] == "https://www.acme-site.test/thanks"
    assert Lead.objects.unscoped().filter(email="browser@form.example").exists()


def test_older_browser_without_fetch_metadata_is_detected_by_accept(client, lead_form):
    response = post_form(client, {"email": "old@browser.example"}, form=lead_form, multipart=True,
                         HTTP_ACCEPT="text/html,*/*")
    assert response.status_code == 303


def test_fetch_and_server_posts_of_form_data_get_json(client, lead_form):
    fetch = post_form(client, {"email": "fetch@form.example"}, form=lead_form, HTTP_SEC_FETCH_MODE="cors",
                      HTTP_ACCEPT="text/html,*/*")
    server = post_form(client, {"email": "server@form.example"}, form=lead_form, HTTP_ACCEPT="*/*")
    assert (fetch.status_code, server.status_code) == (201, 201)
    assert fetch.json()["result"] == "created"


def test_browser_post_without_success_url_gets_a_thank_you_page(client, tenant):
    form = LeadFormFactory(tenant=tenant, name="No redirect", success_url="")
    response = post_form(client, {"email": "thanks@page.example"}, form=form, **BROWSER)
    assert response.status_code == 201
    assert response["Content-Type"].startswith("text/html")
    assert b"Thank you" in response.content


def test_browser_post_that_fails_gets_a_readable_error_page(client, lead_form):
    before = row_counts()
    response = post_form(client, {"email": "not-an-email", "first_name": "<b>x</b>"}, form=lead_form,
                         HTTP_REFERER="https://www.acme-site.test/contact", **BROWSER)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Enter a valid email address." in page and 'href="https://www.acme-site.test/contact"' in page
    assert row_counts() == before


# --- honeypot --------------------------------------------------------------------------------

def test_honeypot_drops_bots_silently(client, lead_form, settings):
    before = row_counts()
    response = post_json(client, {"email": "bot@spam.example", settings.INTAKE_HONEYPOT_FIELD: "http://spam.example"}, form=lead_form)
    assert response.status_code == 201 and response.json()["result"] == "created"
    uuid.UUID(response.json()["id"])
    browser = post_form(client, {"email": "bot@spam.example", settings.INTAKE_HONEYPOT_FIELD: "x"}, form=lead_form, **BROWSER)
    assert browser.status_code == 303
    assert row_counts() == before


def test_empty_honeypot_field_is_a_normal_submission(client, lead_form, settings):
    response = post_form(client, {"email": "human@people.example", settings.INTAKE_HONEYPOT_FIELD: ""}, form=lead_form)
    assert response.status_code == 201
    assert settings.INTAKE_HONEYPOT_FIELD not in Lead.objects.unscoped().get(pk=response.json()["id"]).attributes


# --- idempotency -------------------------------------------------------------------------------

def test_same_idempotency_key_and_body_replays_the_first_answer(client, lead_form):
    first = post_json(client, ADA, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    before = row_counts()
    again = post_json(client, ADA, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert row_counts() == before


def test_same_idempotency_key_with_another_body_is_422(client, lead_form):
    post_json(client, ADA, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-2")
    before = row_counts()
    response = post_json(client, {**ADA, "job_title": "CEO"}, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-2")
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["errors"]
    assert row_counts() == before


def test_idempotency_key_is_per_form_and_expires_after_24_hours(client, lead_form, tenant):
    first = post_json(client, ADA, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-3")
    other_form = LeadFormFactory(tenant=tenant, name="Other")
    assert post_json(client, {"email": "x@other.example"}, form=other_form, HTTP_IDEMPOTENCY_KEY="req-3").status_code == 201
    IdempotencyRecord.objects.unscoped().filter(form=lead_form).update(created_at=timezone.now() - timedelta(hours=25))
    later = post_json(client, ADA, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-3")
    assert later.status_code == 200 and later.json() == {"id": first.json()["id"], "result": "merged"}
    assert "Idempotent-Replayed" not in later
    assert IdempotencyRecord.objects.unscoped().filter(form=lead_form, key="req-3").get().status_code == 200


def test_failed_request_with_idempotency_key_can_be_corrected_and_retried(client, lead_form):
    bad = post_json(client, {"email": "nope"}, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-4")
    assert bad.status_code == 400
    good = post_json(client, {"email": "yes@fixed.example"}, form=lead_form, HTTP_IDEMPOTENCY_KEY="req-4")
    assert good.status_code == 201


def test_idempotent_replay_of_a_browser_post_redirects_again(client, lead_form):
    post_form(client, {"email": "twice@browser.example"}, form=lead_form, HTTP_IDEMPOTENCY_KEY="b-1", **BROWSER)
    response = post_form(client, {"email": "twice@browser.example"}, form=lead_form, HTTP_IDEMPOTENCY_KEY="b-1", **BROWSER)
    assert response.status_code == 303 and response["Idempotent-Replayed"] == "true"
    assert Touch.objects.unscoped().count() == 1


# --- CORS ------------------------------------------------------------------------------------

def _preflight(client, url=INTAKE_URL, origin=ALLOWED_ORIGIN, method="POST"):
    return client.options(url, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-form-key,idempotency-key")


def _assert_cors_allowed(response, origin=ALLOWED_ORIGIN):
    assert response["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response["Vary"]


def test_preflight_with_form_key_query_parameter(client, lead_form):
    response = _preflight(client, f"{INTAKE_URL}?form_key={lead_form.key}")
    assert response.status_code == 204
    _assert_cors_allowed(response)
    allowed_headers = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-form-key", "idempotency-key"} <= allowed_headers
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert int(response["Access-Control-Max-Age"]) > 0


def test_preflight_without_form_key_is_allowed_when_some_active_form_allows_the_origin(client, lead_form):
    _assert_cors_allowed(_preflight(client))
    denied = _preflight(client, origin="https://evil.example")
    assert denied.status_code == 403 and "Access-Control-Allow-Origin" not in denied
    assert "Origin" in denied.json()["errors"]


def test_preflight_is_checked_against_the_given_form(client, lead_form, tenant):
    other = LeadFormFactory(tenant=tenant, name="Partner", allowed_origins=["https://partner.example"])
    assert _preflight(client, f"{INTAKE_URL}?form_key={other.key}").status_code == 403
    assert _preflight(client, f"{INTAKE_URL}?form_key={other.key}", origin="https://partner.example").status_code == 204
    assert _preflight(client, f"{INTAKE_URL}?form_key={lead_form.key}", method="DELETE").status_code == 403


def test_preflight_for_an_inactive_form_is_refused(client, lead_form):
    lead_form.is_active = False
    lead_form.save()
    assert _preflight(client, f"{INTAKE_URL}?form_key={lead_form.key}").status_code == 403
    assert _preflight(client).status_code == 403


def test_post_from_allowed_origin_carries_cors_headers_also_on_errors(client, lead_form):
    ok = post_json(client, {"email": "cors@ok.example"}, form=lead_form, HTTP_ORIGIN=ALLOWED_ORIGIN)
    assert ok.status_code == 201
    _assert_cors_allowed(ok)
    assert "Idempotent-Replayed" in ok["Access-Control-Expose-Headers"]
    bad = post_json(client, {"email": "bad"}, form=lead_form, HTTP_ORIGIN=ALLOWED_ORIGIN)
    assert bad.status_code == 400
    _assert_cors_allowed(bad)


def test_wildcard_form_echoes_the_origin(client, tenant):
    form = LeadFormFactory(tenant=tenant, name="Anywhere", allowed_origins=["*"])
    response = post_json(client, {"email": "any@where.example"}, form=form, HTTP_ORIGIN="https://any.example")
    assert response.status_code == 201
    _assert_cors_allowed(response, "https://any.example")


def test_server_to_server_post_has_no_cors_headers_but_varies_on_origin(client, lead_form):
    response = post_json(client, {"email": "s2s@server.example"}, form=lead_form)
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response and "Origin" in response["Vary"]


# --- throttling ------------------------------------------------------------------------------

def test_throttled_per_form_key(client, lead_form, tenant, monkeypatch):
    monkeypatch.setattr(IntakeFormRateThrottle, "rate", "2/min")
    for n in range(2):
        assert post_json(client, {"email": f"f{n}@rate.example"}, form=lead_form).status_code == 201
    before = row_counts()
    response = post_json(client, {"email": "f3@rate.example"}, form=lead_form, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 429
    assert "detail" in response.json()["errors"] and int(response["Retry-After"]) > 0
    assert row_counts() == before
    other_form = LeadFormFactory(tenant=tenant, name="Other form")
    assert post_json(client, {"email": "f4@rate.example"}, form=other_form).status_code == 201


def test_throttled_per_client_ip(client, lead_form, monkeypatch):
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "2/min")
    for n in range(2):
        assert post_json(client, {"email": f"i{n}@rate.example"}, form=lead_form, REMOTE_ADDR="203.0.113.1").status_code == 201
    blocked = post_json(client, {"email": "i3@rate.example"}, form=lead_form, REMOTE_ADDR="203.0.113.1",
                        HTTP_X_FORWARDED_FOR="10.9.8.7")  # a forged header does not dodge the limit
    assert blocked.status_code == 429
    assert post_json(client, {"email": "i4@rate.example"}, form=lead_form, REMOTE_ADDR="203.0.113.2").status_code == 201
    assert not Lead.objects.unscoped().filter(email="i3@rate.example").exists()


def test_preflights_do_not_use_up_the_ip_limit(client, lead_form, monkeypatch):
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "1/min")
    for _ in range(3):
        assert _preflight(client).status_code == 204
    assert post_json(client, {"email": "pre@flight.example"}, form=lead_form).status_code == 201


# --- tenancy, methods, query count -----------------------------------------------------------

def test_form_key_decides_the_tenant_and_matching_never_crosses_tenants(client, lead_form, other_lead_form):
    mine = post_json(client, ADA, form=lead_form).json()
    theirs = post_json(client, ADA, form=other_lead_form)
    assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
    assert Lead.objects.unscoped().get(pk=theirs.json()["id"]).tenant == other_lead_form.tenant
    assert Account.objects.unscoped().filter(domain="analytical.example").count() == 2
    assert Touch.objects.unscoped().filter(tenant=lead_form.tenant).count() == 1


def test_existing_lead_of_another_tenant_is_never_merged_into(client, lead_form, other_tenant):
    theirs = LeadFactory(tenant=other_tenant, email="shared@both.example", phone="+14155550100")
    response = post_json(client, {"email": "shared@both.example", "phone": "+14155550100"}, form=lead_form)
    assert response.status_code == 201
    lead = Lead.objects.unscoped().get(pk=response.json()["id"])
    assert lead.tenant == lead_form.tenant and lead.possible_duplicate_of is None
    phone_only = post_json(client, {"phone": "+14155550100"}, form=lead_form)
    assert phone_only.json() == {"id": str(lead.pk), "result": "merged"}
    assert Touch.objects.unscoped().filter(lead=theirs).count() == 0


def test_get_is_not_allowed(client, lead_form):
    response = client.get(INTAKE_URL, HTTP_X_FORM_KEY=lead_form.key)
    assert response.status_code == 405
    assert "detail" in response.json()["errors"]


def test_one_intake_post_runs_a_bounded_number_of_queries(client, lead_form, django_assert_max_num_queries):
    """Counts include the SAVEPOINT/RELEASE pairs the test transaction turns atomic blocks into."""
    post_json(client, {"email": "warm@up.example"}, form=lead_form)  # first request loads content types etc.
    with django_assert_max_num_queries(20):
        created = post_json(client, {**ADA, "phone": "+14155550111", "utm_source": "ads", "consent": "yes"},
                            form=lead_form, HTTP_IDEMPOTENCY_KEY="q-1")
    assert created.status_code == 201
    with django_assert_max_num_queries(16):
        merged = post_json(client, {**ADA, "job_title": "Analyst"}, form=lead_form)
    assert merged.status_code == 200


@pytest.mark.parametrize("charset", ["utf-8", "windows-1252"])
def test_form_post_from_a_page_in_either_charset_keeps_accented_names(client, lead_form, charset):
    """Browsers encode a form in its page's charset and do not say which; legacy pages are windows-1252."""
    from urllib.parse import urlencode

    body = urlencode({"form_key": lead_form.key, "email": "zoe@accents.example", "first_name": "Zoë"},
                     encoding=charset)
    response = client.post(INTAKE_URL, data=body, content_type="application/x-www-form-urlencoded",
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 201, response.content
    assert Lead.objects.unscoped().get(email="zoe@accents.example").first_name == "Zoë"
