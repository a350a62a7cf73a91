"""Bad input to the intake endpoint: always a clear 4xx with field messages, never a 500, and nothing written."""
from __future__ import annotations

import io
import json
from urllib.parse import urlencode

import pytest
from django.test import Client, RequestFactory

from leads.intake import IntakeView
from tests.support.factories import LeadFormFactory
from tests.support.intake import ALLOWED_ORIGIN, INTAKE_URL, post_form, post_json, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def nothing_written(db):
    """Asserts after the test that no lead, touch, account, audit event or idempotency record appeared."""
    before = row_counts()
    yield
    assert row_counts() == before


def errors_of(response, status):
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"errors"} and body["errors"], body
    assert all(isinstance(m, list) and m and all(isinstance(x, str) for x in m) for m in body["errors"].values())
    return body["errors"]


@pytest.fixture
def form(lead_form, nothing_written):
    return lead_form


def test_missing_both_email_and_phone(client, form):
    errors = errors_of(post_json(client, {"first_name": "Ada", "company": "Acme"}, form=form), 400)
    assert errors["email"] == ["Enter an email address or a phone number."]
    assert errors["phone"] == ["Enter an email address or a phone number."]


def test_empty_body(client, form):
    errors = errors_of(client.post(INTAKE_URL, content_type="application/json", HTTP_X_FORM_KEY=form.key), 400)
    assert "email" in errors


@pytest.mark.parametrize("email", ["ada", "ada@", "@acme.com", "ada@acme", "ada@@acme.com", "ada @acme.com", "ada@localhost"])
def test_malformed_email(client, form, email):
    errors = errors_of(post_json(client, {"email": email}, form=form), 400)
    assert errors == {"email": ["Enter a valid email address."]}


def test_error_is_keyed_by_the_field_name_the_form_sent(client, form):
    errors = errors_of(post_form(client, {"Email": "nope", "firstname": "x" * 10_000}, form=form), 400)
    assert errors["Email"] == ["Enter a valid email address."]
    assert errors["firstname"] == ["Ensure this field has no more than 100 characters."]


@pytest.mark.parametrize("field, limit", [("first_name", 100), ("last_name", 100), ("company", 200), ("job_title", 200),
                                          ("utm_source", 200), ("industry", 100)])
def test_ten_thousand_character_values_are_refused_not_truncated(client, form, field, limit):
    errors = errors_of(post_json(client, {"email": "long@names.example", field: "N" * 10_000}, form=form), 400)
    assert errors == {field: [f"Ensure this field has no more than {limit} characters."]}


def test_ten_thousand_character_full_name(client, form):
    errors = errors_of(post_json(client, {"email": "long@names.example", "name": "N" * 10_000}, form=form), 400)
    assert list(errors) == ["name"]


def test_full_name_whose_parts_are_too_long(client, form):
    errors = errors_of(post_json(client, {"email": "long@names.example", "name": "A" * 150 + " B"}, form=form), 400)
    assert errors == {"name": ["The first name is limited to 100 characters and the last name to 100."]}


@pytest.mark.parametrize("payload, field", [
    ({"email": "nul@bytes.example", "first_name": "Ada\x00"}, "first_name"),
    ({"email": "nul@bytes.example\x00"}, "email"),
    ({"email": "nul@bytes.example", "message": "hi\x00there"}, "message"),
    ({"email": "nul@bytes.example", "bad\x00key": "x"}, "bad\x00key"),
    ({"email": "nul@bytes.example", "nested": {"a": ["\x00"]}}, "nested"),
])
def test_nul_bytes_are_refused_with_a_field_error(client, form, payload, field):
    errors = errors_of(post_json(client, payload, form=form), 400)
    assert errors[field] == ["Null characters are not allowed."]


def test_nul_bytes_in_urlencoded_form(client, form):
    errors = errors_of(post_form(client, {"email": "nul@bytes.example", "last_name": "Love\x00lace"}, form=form), 400)
    assert errors == {"last_name": ["Null characters are not allowed."]}


def test_lone_surrogates_are_refused(client, form):
    body = '{"email": "s@surrogate.example", "first_name": "\\ud800", "note": "\\udfff"}'
    errors = errors_of(post_json(client, body, form=form), 400)
    assert set(errors) == {"first_name", "note"}


@pytest.mark.parametrize("body", ['{"email": "x@y.example", "score": 1e400}', '{"email": "x@y.example", "score": NaN}',
                                  '{"email": "x@y.example", "score": Infinity}'])
def test_non_finite_numbers_are_refused(client, form, body):
    errors_of(post_json(client, body, form=form), 400)


@pytest.mark.parametrize("value", [{"a": 1}, ["a@b.example"], True])
def test_non_text_values_for_text_fields(client, form, value):
    errors = errors_of(post_json(client, {"email": value}, form=form), 400)
    assert errors == {"email": ["Not a valid string."]}


@pytest.mark.parametrize("payload, field", [
    ({"email": "p@phone.example", "phone": "call me maybe"}, "phone"),
    ({"email": "p@phone.example", "company_size": "lots"}, "company_size"),
    ({"email": "p@phone.example", "employees": "-5"}, "employees"),
    ({"email": "p@phone.example", "consent": "perhaps"}, "consent"),
    ({"email": "p@phone.example", "website": "not a website"}, "website"),
    ({"email": "p@phone.example", "company_domain": "http://[::1]/"}, "company_domain"),
])
def test_unusable_values_of_known_fields(client, form, payload, field):
    assert list(errors_of(post_json(client, payload, form=form), 400)) == [field]


def test_attribute_limits(client, form, settings):
    too_many = {f"extra_{n}": "x" for n in range(60)}
    assert "attributes" in errors_of(post_json(client, {"email": "a@attrs.example", **too_many}, form=form), 400)
    long_value = errors_of(post_json(client, {"email": "a@attrs.example", "message": "m" * 5000}, form=form), 400)
    assert long_value == {"message": ["Ensure this field has no more than 2000 characters."]}
    long_key = errors_of(post_json(client, {"email": "a@attrs.example", "k" * 150: "v"}, form=form), 400)
    assert "attributes" in long_key
    settings.INTAKE_MAX_ATTRIBUTES_BYTES = 1000
    too_big = {f"field_{n}": "v" * 100 for n in range(20)}
    errors = errors_of(post_json(client, {"email": "a@attrs.example", **too_big}, form=form), 400)
    assert errors["attributes"][0].startswith("Extra fields are limited to 1000 bytes")


def test_too_deeply_nested_attribute(client, form):
    nested = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}
    errors = errors_of(post_json(client, {"email": "a@deep.example", "deep": nested}, form=form), 400)
    assert errors["deep"] == ["Nested more than 5 levels deep."]


def test_pathologically_nested_json(client, form):
    depth = 32_000  # valid JSON just under the 64 KB body limit, deeper than Python's recursion limit
    body = '{"email": "a@deep.example", "x": ' + "[" * depth + "]" * depth + "}"
    errors = errors_of(post_json(client, body, form=form), 400)
    assert errors == {"detail": ["JSON parse error - nested too deeply."]}


# --- the envelope ----------------------------------------------------------------------------

@pytest.mark.parametrize("body", ['{"email": "a@b.example"', "{'email': 'a@b.example'}", "not json", "\xff\xfe"])
def test_malformed_json(client, form, body):
    errors = errors_of(post_json(client, body.encode("latin-1"), form=form), 400)
    assert "detail" in errors


@pytest.mark.parametrize("body", ['[{"email": "a@b.example"}]', "42", '"a@b.example"', "null", "true"])
def test_json_that_is_not_an_object(client, form, body):
    errors = errors_of(post_json(client, body, form=form), 400)
    assert errors["detail"][0].startswith("The body must be a JSON object")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/csv", "application/octet-stream"])
def test_wrong_content_type(client, form, content_type):
    response = client.post(INTAKE_URL, data='{"email": "a@b.example"}', content_type=content_type, HTTP_X_FORM_KEY=form.key)
    errors = errors_of(response, 415)
    assert "detail" in errors


def test_body_over_the_limit_by_content_length(client, form, settings):
    body = json.dumps({"email": "big@body.example", "message": "x" * settings.INTAKE_MAX_BODY_BYTES})
    response = post_json(client, body, form=form, HTTP_ORIGIN=ALLOWED_ORIGIN)
    errors = errors_of(response, 413)
    assert errors["detail"] == [f"The request body is larger than {settings.INTAKE_MAX_BODY_BYTES} bytes."]
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN  # the page's script can read why


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=xyz"])
def test_malformed_multipart(client, form, content_type):
    response = client.post(INTAKE_URL, data=b"--nope\r\ngarbage", content_type=content_type, HTTP_X_FORM_KEY=form.key)
    errors_of(response, 400)


def test_body_over_the_limit_without_form_key_header_is_still_413(client, form, settings):
    body = urlencode({"form_key": form.key, "email": "big@body.example", "message": "x" * settings.INTAKE_MAX_BODY_BYTES})
    response = client.post(INTAKE_URL, data=body, content_type="application/x-www-form-urlencoded")
    errors_of(response, 413)


def _chunked_request(body: bytes, form):
    request = RequestFactory().post(INTAKE_URL, data=b"", content_type="application/json", HTTP_X_FORM_KEY=form.key)
    request.META.pop("CONTENT_LENGTH", None)
    request.META.update({"CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)})
    return IntakeView.as_view()(request)


def test_chunked_body_over_the_limit(form, settings):
    body = json.dumps({"email": "chunk@body.example", "message": "x" * (settings.INTAKE_MAX_BODY_BYTES + 10)}).encode()
    response = _chunked_request(body, form)
    response.render()
    assert response.status_code == 413


def test_chunked_body_under_the_limit_is_read(lead_form):
    response = _chunked_request(json.dumps({"email": "chunk@ok.example"}).encode(), lead_form)
    response.render()
    assert response.status_code == 201, response.content


def test_too_many_urlencoded_fields(client, form):
    body = "&".join(f"f{n}=1" for n in range(1500)) + f"&form_key={form.key}&email=a%40b.example"
    response = client.post(INTAKE_URL, data=body, content_type="application/x-www-form-urlencoded", HTTP_X_FORM_KEY=form.key)
    errors_of(response, 400)


def test_bad_idempotency_key(client, form):
    errors = errors_of(post_json(client, {"email": "a@b.example"}, form=form, HTTP_IDEMPOTENCY_KEY="k" * 300), 400)
    assert list(errors) == ["Idempotency-Key"]


# --- form keys and origins -------------------------------------------------------------------

def test_missing_form_key_is_401(client, nothing_written, lead_form):
    response = post_json(client, {"email": "a@b.example"})
    assert errors_of(response, 401) == {"form_key": ["A form key is required (the X-Form-Key header or a form_key field)."]}
    assert "WWW-Authenticate" in response


@pytest.mark.parametrize("key", ["lf_does-not-exist", "", "x" * 500, "lf_\x00"])
def test_wrong_form_key_is_403(client, form, key):
    response = post_json(client, {"email": "a@b.example"}, HTTP_X_FORM_KEY="lf_does-not-exist") if not key else \
        post_json(client, {"email": "a@b.example", "form_key": key})
    assert errors_of(response, 403) == {"form_key": ["Unknown or inactive form key."]}


def test_inactive_form_key_is_403(client, lead_form, nothing_written):
    lead_form.is_active = False
    lead_form.save()
    assert "form_key" in errors_of(post_json(client, {"email": "a@b.example"}, form=lead_form), 403)


def test_form_of_an_inactive_tenant_is_403(client, lead_form, nothing_written):
    lead_form.tenant.is_active = False
    lead_form.tenant.save()
    assert "form_key" in errors_of(post_json(client, {"email": "a@b.example"}, form=lead_form), 403)


def test_conflicting_form_keys_of_two_tenants_are_refused(client, lead_form, other_lead_form, nothing_written):
    response = post_json(client, {"email": "a@b.example", "form_key": other_lead_form.key}, form=lead_form)
    assert errors_of(response, 400) == {"form_key": ["Conflicting form keys were sent."]}


def test_disallowed_origin_is_403_with_a_message(client, form):
    response = post_json(client, {"email": "a@b.example"}, form=form, HTTP_ORIGIN="https://evil.example")
    errors = errors_of(response, 403)
    assert errors == {"Origin": ["Submissions from https://evil.example are not allowed for this form."]}
    assert "Access-Control-Allow-Origin" not in response


def test_origin_allowed_for_another_tenants_form_is_not_allowed_for_this_one(client, tenant, other_tenant, nothing_written):
    LeadFormFactory(tenant=tenant, name="A site", allowed_origins=["https://a.example"])
    theirs = LeadFormFactory(tenant=other_tenant, name="B site", allowed_origins=["https://b.example"])
    response = post_json(client, {"email": "a@b.example"}, form=theirs, HTTP_ORIGIN="https://a.example")
    errors_of(response, 403)
