"""Hostile input to the API and the UI: always a 4xx with field errors, never a 500; JSON 404s under /api/."""
from __future__ import annotations

import datetime as dt
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.tenancy.models import Role
from leads.models import Signal
from tests.support.factories import LeadFactory
from tests.support.intake import post_json

pytestmark = pytest.mark.django_db
SURROGATE = "\udfff"


def raw_json(client, method, url, text):
    """Send `text` as the JSON body as it is (json.dumps escapes a lone surrogate as \\udfff)."""
    return getattr(client, method)(url, data=text.encode(), content_type="application/json")


def field_errors(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    return response.json()["errors"]


@pytest.mark.parametrize("param", ["created_after", "created_before", "updated_after"])
@pytest.mark.parametrize("value", ["99999-01-01T00:00:00Z", "0001-01-01T00:00:00+10:00", "2026-13-01", "tomorrow"])
def test_datetime_filters_refuse_unusable_values_with_a_field_error(api_client, param, value):
    assert param in field_errors(api_client.get("/api/v1/leads/", {param: value}))


@pytest.mark.parametrize("param", ["created_after", "updated_after"])
def test_datetime_filter_offsets_postgresql_refuses_are_moved_to_utc(tenant, api_client, param):
    """+20:07 parses in Python but PostgreSQL refuses it ("time zone displacement out of range")."""
    lead = LeadFactory(tenant=tenant)
    before = (timezone.now() - timedelta(hours=1)).astimezone(dt.timezone(timedelta(hours=20, minutes=7)))
    after = (timezone.now() + timedelta(hours=1)).astimezone(dt.timezone(-timedelta(hours=17)))
    for value, expected in ((before, {str(lead.id)}), (after, set())):
        response = api_client.get("/api/v1/leads/", {param: value.isoformat()})
        assert response.status_code == 200, response.content
        assert {row["id"] for row in response.json()["results"]} == expected


@pytest.mark.parametrize("value", ["³", "١٢", "1" * 30, "-1"])
def test_owner_filter_refuses_non_ascii_digits(api_client, value):
    assert "owner" in field_errors(api_client.get("/api/v1/leads/", {"owner": value}))


def test_intake_lone_surrogate_key(client, lead_form):
    response = post_json(client, '{"email": "s@x.example", "\\udfff": "x"}', form=lead_form)
    assert response.status_code == 400, response.content


def test_lead_patch_lone_surrogate_key_and_value(tenant, api_client):
    lead = LeadFactory(tenant=tenant)
    url = f"/api/v1/leads/{lead.id}/"
    assert field_errors(raw_json(api_client, "patch", url, '{"\\udfff": "x"}'))
    assert "company" in field_errors(raw_json(api_client, "patch", url, '{"company": "\\udfff"}'))


@pytest.mark.parametrize("properties", ['{"\\udfff": "x"}', '{"url": "\\ud800"}', '{"a": [{"b\\u0000": 1}]}'])
def test_signal_properties_postgresql_cannot_store_are_an_item_error(tenant, api_client, properties):
    body = '{"email": "a@b.example", "type": "pricing_page_view", "occurred_at": "2026-01-01T00:00:00Z", ' \
           f'"properties": {properties}}}'
    response = raw_json(api_client, "post", "/api/v1/signals/", body)
    assert response.status_code == 202, response.content
    (result,) = response.json()["results"]
    assert result["status"] == "error" and list(result["errors"]) == ["properties"]
    assert not Signal.objects.unscoped().filter(tenant=tenant).exists()


def test_dry_run_values_lone_surrogate(api_client):
    assert "values" in field_errors(raw_json(api_client, "post", "/api/v1/routing/dry-run/", '{"values": {"\\udfff": 1}}'))


# --- every write endpoint of the API with hostile field values -------------------------------------------

HOSTILE_VALUES = ["x" * 20_000, "a\x00b", 10**30, -(10**30), -1, 1.5, True, None, [], {}, "³", "2026-01-01T00:00:00+20:07",
                  "0001-01-01T00:00:00+10:00", {"\x00": 1}]
WRITE_BODIES = {
    "PATCH {lead}": ["email", "first_name", "company_size", "status", "stage", "owner", "reason", "country"],
    "POST {lead}activities/": ["kind", "subject", "body", "outcome", "occurred_at"],
    "POST {lead}accept/": ["expected_owner_id"],
    "POST {lead}reject/": ["reason", "note", "expected_owner_id"],
    "POST {lead}qualify/": ["budget", "authority", "need", "timeline", "expected_owner_id"],
    "POST {lead}convert/": ["name", "stage", "amount", "close_date", "expected_owner_id"],
    "POST {lead}reassign/": ["to_user_id", "reason", "expected_owner_id"],
    "POST {lead}enrollments/": ["sequence"],
    "POST /api/v1/leads/reassign-bulk/": ["from_user_id", "to_user_id", "reason"],
    "POST /api/v1/routing/dry-run/": ["lead_id", "values"],
    "POST /api/v1/signals/": ["email", "lead_id", "type", "occurred_at", "external_id", "properties"],
    "POST /api/v1/leads/batch/": ["leads", "source"],  # its leads' own fields: tests/leads/test_batch_intake.py
}
BASE_BODIES = {"POST /api/v1/leads/batch/": {"leads": [{"email": "a@b.example"}]},
               "POST /api/v1/signals/": {"email": "a@b.example", "type": "pricing_page_view",
                                         "occurred_at": "2026-01-01T00:00:00Z"}}


@pytest.mark.parametrize("operation, field", [(op, f) for op, fields in WRITE_BODIES.items() for f in fields])
def test_write_endpoints_answer_hostile_field_values_with_a_4xx(tenant, api_client, operation, field):
    method, url = operation.split(" ")
    lead = LeadFactory(tenant=tenant)
    url = url.format(lead=f"/api/v1/leads/{lead.id}/")
    for value in HOSTILE_VALUES:
        body = {**BASE_BODIES.get(operation, {}), field: value}
        response = getattr(api_client, method.lower())(url, data=json.dumps(body), content_type="application/json")
        assert response.status_code < 500, (field, str(value)[:40], response.content[:300])
        if response.status_code == 400:
            assert set(response.json()) == {"errors"}, response.content[:300]


@pytest.mark.parametrize("url", ["/api/v1/notifications/99999999999999999999/read/",
                                 "/api/v1/leads/00000000-0000-0000-0000-000000000000/enrollments/99999999999999999999/stop/"])
def test_huge_ids_in_the_path_are_a_404(tenant, make_member, client_for, url):
    response = client_for(make_member(tenant, Role.ADMIN)).post(url, data={}, format="json")
    assert response.status_code == 404, response.content[:300]


# --- 404s under /api/ are JSON -------------------------------------------------------------------------


@pytest.mark.parametrize("method, url", [
    ("get", "/api/v1/leads/not-a-uuid/"), ("patch", "/api/v1/leads/not-a-uuid/"), ("get", "/api/v1/nope/"),
    ("post", "/api/v1/leads/not-a-uuid/accept/"), ("get", "/api/v1/leads/00000000-0000-0000-0000-000000000000/"),
    ("get", "/api/nope"), ("post", "/api/v1/notifications/abc/read/"),
])
def test_api_404s_are_json_errors(api_client, method, url):
    response = getattr(api_client, method)(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"errors": {"detail": ["Not found."]}}


def test_api_405_is_a_json_error(tenant, api_client):
    response = api_client.delete(f"/api/v1/leads/{LeadFactory(tenant=tenant).id}/")
    assert response.status_code == 405
    assert set(response.json()) == {"errors"}


def test_ui_404_stays_an_html_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_server_errors_under_api_are_json_and_html_elsewhere(rf):
    from leadmgmt.views import server_error

    api = server_error(rf.get("/api/v1/leads/"))
    assert api.status_code == 500 and json.loads(api.content) == {"errors": {"detail": ["A server error occurred."]}}
    page = server_error(rf.get("/queue/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
