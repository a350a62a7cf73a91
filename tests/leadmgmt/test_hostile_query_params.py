"""Hostile query parameters on every list of the API and the UI: a 4xx or the page, never a 500."""
from __future__ import annotations

import pytest
from django.test import Client

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Membership, Role
from routing.defaults import routing_defaults_create
from tests.support.factories import LeadFactory, TeamFactory

pytestmark = pytest.mark.django_db

HOSTILE = ["x" * 5000, "a\x00b", "\udfff", "³", "١٢", "１２", str(10**30), "-1", "-99999999999999999999", "0",
           "1e400", "NaN", "abc", "2026-01-01T00:00:00+20:07", "99999-12-31", "0001-01-01", "9999-12-31", "' OR 1=1 --", "<script>", "%00", " "]

API_LISTS = {
    "/api/v1/leads/": ["status", "stage", "owner", "source", "band", "lead_class", "account", "score_min",
                       "score_max", "created_after", "created_before", "updated_after", "q", "ordering", "page",
                       "page_size"],
    "/api/v1/routing/rejection-reasons/": ["page", "page_size"],
    "/api/v1/nurture/sequences/": ["page", "page_size"],
    "/api/v1/notifications/": ["page", "page_size", "unread"],
}
UI_LISTS = {
    "/queue/": ["q", "status", "band", "lead_class", "source", "page", "sort"],
    "/manager/": ["rep", "status", "page"],
    "/manager/unassigned/": ["page"],
    "/manager/escalations/": ["page"],
    "/manager/aging/": ["page"],
    "/manager/hot/": ["page"],
    "/manager/reps/": ["page"],
    "/dashboard/": ["start", "end", "by", "rep", "source"],
    "/dashboard/me/": ["start", "end", "by"],
    "/dashboard/export/volume.csv": ["start", "end", "by", "rep", "source"],
    "/dashboard/export/sla.csv": ["start", "end"],
    "/notifications/": ["page", "show"],
    "/notifications/bell/": ["page"],
    "/tenant/switch/": ["next"],
}


def cases(lists):
    return [(url, param) for url, params in lists.items() for param in params]


def _encodable(value: str) -> str:
    """The test client cannot put a lone surrogate in a URL; browsers send it as U+FFFD."""
    return value.encode("utf-8", "replace").decode("utf-8")


@pytest.fixture
def world(tenant, make_member):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    team = TeamFactory(tenant=tenant, name="East")
    manager = make_member(tenant, Role.MANAGER, team=team)
    rep = make_member(tenant, Role.SDR, team=team)
    for owner in (rep, None):
        LeadFactory(tenant=tenant, owner=owner)
    return {"manager": manager, "admin": make_member(tenant, Role.ADMIN), "rep": rep}


def browser_for(user, tenant) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_TENANT_KEY] = tenant.pk
    session.save()
    return client


@pytest.mark.parametrize("url, param", cases(API_LISTS))
def test_api_list_parameters_never_answer_500(world, client_for, url, param):
    client = client_for(world["admin"])
    for value in HOSTILE:
        response = client.get(url, {param: _encodable(value)})
        assert response.status_code < 500, (param, value, response.content[:300])
        assert response["Content-Type"].startswith("application/json"), (param, value)


@pytest.mark.parametrize("url", ["/api/v1/leads/", "/api/v1/nurture/sequences/", "/api/v1/notifications/"])
def test_page_size_is_a_whole_number_from_1_or_a_400(world, client_for, url):
    client = client_for(world["admin"])
    for value in ["abc", "0", "-1", "2.5", "null", "³"]:
        response = client.get(url, {"page_size": value})
        assert response.status_code == 400, (value, response.content[:200])
        assert response.json() == {"errors": {"page_size": ["Enter a whole number from 1."]}}
    for value in ["", "1", "501", "9" * 40]:  # empty is the default; above the maximum gives the maximum
        assert client.get(url, {"page_size": value}).status_code == 200, value


@pytest.mark.parametrize("url, param", cases(UI_LISTS))
@pytest.mark.parametrize("role", ["manager", "admin"])
def test_ui_list_parameters_never_answer_500(world, tenant, url, param, role):
    client = browser_for(world[role], tenant)
    for value in HOSTILE:
        response = client.get(url, {param: _encodable(value)})
        assert response.status_code < 500, (param, value, response.status_code)


@pytest.mark.parametrize("start, end", [("0001-01-01", "0001-01-01"), ("9999-12-31", "9999-12-31"),
                                        ("0001-01-01", "9999-12-31"), ("", "0001-01-01"), ("9999-12-31", "")])
@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/me/", "/dashboard/reps/{rep}/"])
def test_dashboard_periods_at_the_ends_of_the_calendar_are_a_field_error(world, tenant, url, start, end):
    rep = Membership.objects.unscoped().get(tenant=tenant, user=world["rep"])
    response = browser_for(world["manager"], tenant).get(url.format(rep=rep.pk), {"start": start, "end": end})
    assert response.status_code in (200, 400), response.status_code
    form = response.context["form"]
    assert form.errors, form.data


# --- the UI's forms with hostile values (a browser posts bytes: invalid UTF-8 included) ---------------------

FORM_VALUES = [b"x" * 20_000, b"a%00b", b"%ED%BF%BF", b"%C2%B3", b"%EF%BC%91%EF%BC%92", b"9" * 30, b"-1",
               b"2026-01-01T00%3A00%2B20%3A07", b"0001-01-01T00%3A00", b"9999-12-31T23%3A59", b"%FF%FE"]
LEAD_FORMS = {
    "log": ["kind", "outcome", "subject", "body", "occurred_at", "expected_owner_id"],
    "accept": ["expected_owner_id"],
    "reject": ["reason", "note", "expected_owner_id"],
    "qualify": ["budget", "authority", "need", "timeline", "expected_owner_id"],
    "recycle": ["reason", "expected_owner_id"],
    "convert": ["convert-name", "convert-stage", "convert-amount", "convert-close_date", "expected_owner_id"],
    "reassign": ["to_user", "reason", "expected_owner_id"],
    "edit": ["first_name", "email", "phone", "company_size", "country", "expected_updated_at"],
    "enroll": ["enroll-sequence"],
    "stop-nurture": ["stop-enrollment", "stop-note"],
}


def post_bytes(client, url, field: str, value: bytes):
    body = field.encode() + b"=" + value
    return client.post(url, data=body, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("action, field", [(a, f) for a, fields in LEAD_FORMS.items() for f in fields])
def test_lead_page_forms_answer_hostile_values_without_a_500(world, tenant, action, field):
    client = browser_for(world["admin"], tenant)
    lead = LeadFactory(tenant=tenant, owner=world["rep"])
    for value in FORM_VALUES:
        response = post_bytes(client, f"/leads/{lead.id}/{action}/", field, value)
        assert response.status_code < 500, (action, field, value[:30])


@pytest.mark.parametrize("field", ["to_user", "reason", "expected_owner_id", "next"])
def test_manager_reassign_form_answers_hostile_values_without_a_500(world, tenant, field):
    client = browser_for(world["manager"], tenant)
    lead = LeadFactory(tenant=tenant, owner=world["rep"])
    for value in FORM_VALUES:
        response = post_bytes(client, f"/manager/leads/{lead.id}/reassign/", field, value)
        assert response.status_code < 500, (field, value[:30])


@pytest.mark.parametrize("field", ["unavailable_from", "unavailable_until", "is_available"])
def test_rep_availability_form_answers_hostile_values_without_a_500(world, tenant, field):
    client = browser_for(world["manager"], tenant)
    membership = Membership.objects.unscoped().get(tenant=tenant, user=world["rep"])
    for value in FORM_VALUES:
        response = post_bytes(client, f"/manager/reps/{membership.pk}/availability/", field, value)
        assert response.status_code < 500, (field, value[:30])


def test_tenant_switch_answers_hostile_values_without_a_500(world, tenant):
    client = browser_for(world["admin"], tenant)
    for value in FORM_VALUES:
        assert post_bytes(client, "/tenant/switch/", "tenant", value).status_code < 500, value[:30]


@pytest.mark.parametrize("url", ["/admin/nurture/enrollment/", "/admin/nurture/message/"])
def test_admin_sequence_filter_refuses_non_ascii_digits_without_a_500(world, tenant, url):
    user = world["admin"]
    user.is_staff = True
    user.save()
    client = browser_for(user, tenant)
    for value in ("³", "１２", "9" * 30, "abc"):
        response = client.get(url, {"sequence": value})
        assert response.status_code < 500, (value, response.status_code)
