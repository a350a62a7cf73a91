"""The notification centre: the top bar's bell (one query for its count), `/notifications/` (own notifications of
the active tenant only, newest first, paginated), mark one / all read (POST, CSRF, htmx), opening one marks it
read; the JSON API (session only); another member's or tenant's notification is a 404."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadmgmt.tenancy.models import Role
from routing.models import Notification
from routing.notifications import notify
from tests.support.factories import MembershipFactory, api_key_for
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db


def note(tenant, user, title="Something happened", *, lead=None, ago=0, read=False, **fields) -> Notification:
    created = notify(tenant=tenant, user=user, kind=fields.pop("kind", "lead_assigned"), title=title, lead=lead,
                     body=fields.pop("body", ""), now=timezone.now() - timedelta(minutes=ago))
    if read:
        Notification.objects.unscoped().filter(pk=created.pk).update(read_at=timezone.now())
    return Notification.objects.unscoped().get(pk=created.pk)


def bell_count(body: str) -> str | None:
    match = re.search(r'data-testid="notification-count">([^<]+)<', body)
    return match.group(1) if match else None


# --- the bell ---------------------------------------------------------------------------------------------


def test_the_bell_shows_the_members_unread_count_on_every_workspace_page(tenant, other_tenant, org, signed_in):
    rep = org["rep"]
    note(tenant, rep, "one")
    note(tenant, rep, "two")
    note(tenant, rep, "read already", read=True)
    note(tenant, org["rep2"], "someone else's")
    MembershipFactory(tenant=other_tenant, user=rep, role=Role.SDR)
    note(other_tenant, rep, "another workspace's")
    body = signed_in(rep, tenant).get("/queue/").content.decode()
    assert 'id="notification-bell"' in body and bell_count(body) == "2"
    assert 'href="/notifications/"' in body and "Notifications, 2 unread" in body


def test_no_unread_notifications_shows_the_bell_without_a_count(tenant, org, signed_in):
    body = signed_in(org["rep"], tenant).get("/queue/").content.decode()
    assert 'id="notification-bell"' in body and bell_count(body) is None


def test_a_large_backlog_shows_99_plus(tenant, org, signed_in):
    Notification.objects.unscoped().bulk_create([
        Notification(tenant=tenant, user=org["rep"], kind="lead_assigned", title=f"n{i}") for i in range(120)])
    assert bell_count(signed_in(org["rep"], tenant).get("/queue/").content.decode()) == "99+"


def test_the_bell_is_absent_without_a_workspace(db, signed_in):
    from tests.support.factories import UserFactory

    body = signed_in(UserFactory()).get("/queue/").content.decode()
    assert 'id="notification-bell"' not in body


def test_the_bell_count_is_one_query(tenant, org, signed_in):
    client = signed_in(org["rep"], tenant)
    client.get("/queue/")
    note(tenant, org["rep"], "x")
    with CaptureQueriesContext(connection) as queries:
        client.get("/queue/")
    counts = [q["sql"] for q in queries.captured_queries if "routing_notification" in q["sql"]]
    assert len(counts) == 1 and "COUNT" in counts[0].upper()


def test_partials_without_the_bell_do_not_count(tenant, org, signed_in):
    client = signed_in(org["rep"], tenant)
    with CaptureQueriesContext(connection) as queries:
        client.get("/queue/", HTTP_HX_REQUEST="true")
    assert not [q for q in queries.captured_queries if "routing_notification" in q["sql"]]


def test_the_bell_partial_is_polled_and_refreshes_the_count(tenant, org, signed_in, django_assert_max_num_queries):
    client = signed_in(org["rep"], tenant)
    body = client.get("/notifications/bell/", HTTP_HX_REQUEST="true").content.decode()
    assert body.strip().startswith('<span id="notification-bell"') and "<html" not in body
    assert 'hx-get="/notifications/bell/"' in body and re.search(r'hx-trigger="every \d+s"', body)
    assert bell_count(body) is None
    note(tenant, org["rep"], "new lead")
    with django_assert_max_num_queries(6):
        assert bell_count(client.get("/notifications/bell/").content.decode()) == "1"


# --- the page -------------------------------------------------------------------------------------------------


def test_the_page_lists_own_notifications_newest_first_with_a_link_to_the_lead(tenant, other_tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, first_name="Peter", last_name="Gibbons")
    older = note(tenant, rep, "Older news", ago=30, body="Line one\nLine two")
    newer = note(tenant, rep, "Hot lead: Peter Gibbons", lead=lead, ago=1)
    theirs = note(tenant, org["rep2"], "Not yours")
    MembershipFactory(tenant=other_tenant, user=rep, role=Role.SDR)
    elsewhere = note(other_tenant, rep, "Other workspace")
    body = signed_in(rep, tenant).get("/notifications/").content.decode()
    ids = [int(i) for i in re.findall(r'data-notification-id="(\d+)"', body)]
    assert newer.pk in ids and older.pk in ids and ids.index(newer.pk) < ids.index(older.pk)
    assert theirs.pk not in ids and elsewhere.pk not in ids
    assert f'href="/notifications/{newer.pk}/open/"' in body and "Line one<br>Line two" in body
    assert "ago</time>" in body and "New lead" in body


def test_the_page_paginates_and_shows_only_unread_on_request(tenant, org, signed_in, django_assert_max_num_queries):
    rep = org["rep"]
    for i in range(30):
        note(tenant, rep, f"N{i:02d}", ago=i, read=i % 2 == 1)
    client = signed_in(rep, tenant)
    client.get("/notifications/")
    with django_assert_max_num_queries(8):
        first = client.get("/notifications/").content.decode()
    assert "Page 1 of 2" in first and "N00" in first and "N29" not in first
    assert "N29" in client.get("/notifications/", {"page": 2}).content.decode()
    unread = client.get("/notifications/", {"show": "unread"}).content.decode()
    assert "N00" in unread and "N01" not in unread and "Page" not in unread


def test_an_empty_centre_says_what_will_show_up(tenant, org, signed_in):
    body = signed_in(org["rep"], tenant).get("/notifications/").content.decode()
    assert "No notifications yet" in body
    note(tenant, org["rep"], "read", read=True)
    assert "all caught up" in signed_in(org["rep"], tenant).get("/notifications/?show=unread").content.decode()


def test_every_role_has_a_notification_centre(tenant, org, signed_in):
    for role in (Role.SDR, Role.AE, Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS):
        user = person(tenant, role=role)
        assert signed_in(user, tenant).get("/notifications/").status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(client, tenant):
    response = client.get("/notifications/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- mark read, mark all, open --------------------------------------------------------------------------------


def test_mark_one_read_needs_post_and_csrf(tenant, org, signed_in):
    item = note(tenant, org["rep"])
    client = signed_in(org["rep"], tenant, enforce_csrf_checks=True)
    assert client.get(f"/notifications/{item.pk}/read/").status_code == 405
    assert client.post(f"/notifications/{item.pk}/read/").status_code == 403
    assert Notification.objects.unscoped().get(pk=item.pk).read_at is None


def test_mark_one_read_redirects_back_to_the_list(tenant, org, signed_in):
    item = note(tenant, org["rep"])
    response = signed_in(org["rep"], tenant).post(f"/notifications/{item.pk}/read/",
                                                  {"next": "/notifications/?show=unread&page=1"})
    assert response.status_code == 302 and response["Location"] == "/notifications/?show=unread&page=1"
    assert Notification.objects.unscoped().get(pk=item.pk).read_at is not None
    off_site = signed_in(org["rep"], tenant).post(f"/notifications/{item.pk}/read/", {"next": "https://evil.test/"})
    assert off_site["Location"] == "/notifications/"


def test_mark_one_read_over_htmx_returns_the_row_and_the_bell(tenant, org, signed_in):
    item = note(tenant, org["rep"], "Mark me")
    note(tenant, org["rep"], "Still unread")
    response = signed_in(org["rep"], tenant).post(f"/notifications/{item.pk}/read/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith(f'<li class="notification" id="notification-{item.pk}"')
    assert 'data-testid="notification-read"' in body
    assert 'id="notification-bell"' in body and 'hx-swap-oob="true"' in body and bell_count(body) == "1"


def test_mark_all_read_marks_only_the_members_own_in_this_workspace(tenant, other_tenant, org, signed_in):
    rep = org["rep"]
    mine = [note(tenant, rep, f"m{i}") for i in range(3)]
    theirs = note(tenant, org["rep2"], "theirs")
    MembershipFactory(tenant=other_tenant, user=rep, role=Role.SDR)
    elsewhere = note(other_tenant, rep, "elsewhere")
    response = signed_in(rep, tenant).post("/notifications/read-all/", {"next": "/notifications/"}, follow=True)
    assert "Marked 3 notifications read." in response.content.decode()
    assert not Notification.objects.unscoped().filter(pk__in=[m.pk for m in mine], read_at__isnull=True).exists()
    assert Notification.objects.unscoped().get(pk=theirs.pk).read_at is None
    assert Notification.objects.unscoped().get(pk=elsewhere.pk).read_at is None


def test_mark_all_read_over_htmx_returns_the_list_and_an_empty_bell(tenant, org, signed_in):
    note(tenant, org["rep"], "a")
    body = signed_in(org["rep"], tenant).post("/notifications/read-all/", {"show": "unread"},
                                              HTTP_HX_REQUEST="true").content.decode()
    assert body.lstrip().startswith('<div id="notification-list"') and "all caught up" in body
    assert "Marked 1 notification read." in body and 'hx-swap-oob="true"' in body and bell_count(body) is None


def test_opening_a_notification_marks_it_read_and_goes_to_its_lead(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    item = note(tenant, rep, "New lead", lead=lead)
    client = signed_in(rep, tenant)
    response = client.get(f"/notifications/{item.pk}/open/")
    assert response.status_code == 302 and response["Location"] == f"/leads/{lead.pk}/"
    assert Notification.objects.unscoped().get(pk=item.pk).read_at is not None
    without_lead = note(tenant, rep, "No lead")
    assert client.get(f"/notifications/{without_lead.pk}/open/")["Location"] == "/notifications/"


@pytest.mark.parametrize("whose", ["another member", "another tenant"])
def test_someone_elses_notification_is_a_404_everywhere(tenant, other_tenant, org, signed_in, whose):
    rep = org["rep"]
    if whose == "another member":
        item = note(tenant, org["rep2"], "theirs")
    else:
        MembershipFactory(tenant=other_tenant, user=rep, role=Role.SDR)
        item = note(other_tenant, rep, "other workspace")
    client = signed_in(rep, tenant)
    assert client.post(f"/notifications/{item.pk}/read/").status_code == 404
    assert client.get(f"/notifications/{item.pk}/open/").status_code == 404
    assert client.post(f"/api/v1/notifications/{item.pk}/read/").status_code == 404
    assert Notification.objects.unscoped().get(pk=item.pk).read_at is None


# --- the JSON API ------------------------------------------------------------------------------------------------


def test_the_api_lists_own_notifications_and_marks_one_read(tenant, org, client_for):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    item = note(tenant, rep, "Hot lead", lead=lead)
    note(tenant, org["rep2"], "theirs")
    api = client_for(rep)
    listed = api.get("/api/v1/notifications/")
    assert listed.status_code == 200 and listed["X-Unread-Count"] == "2"  # the assignment's own notice and this one
    titles = [row["title"] for row in listed.json()["results"]]
    assert "Hot lead" in titles and "theirs" not in titles
    row = next(r for r in listed.json()["results"] if r["id"] == item.pk)
    assert row["lead_url"] == f"/leads/{lead.pk}/" and row["is_read"] is False
    marked = api.post(f"/api/v1/notifications/{item.pk}/read/")
    assert marked.status_code == 200 and marked.json()["is_read"] is True
    unread = api.get("/api/v1/notifications/", {"unread": "true"}).json()["results"]
    assert [r["kind"] for r in unread] == ["lead_assigned"] and item.pk not in [r["id"] for r in unread]
    assert api.post("/api/v1/notifications/read-all/").json() == {"marked": 1}


@pytest.mark.parametrize("value", ["maybe", ""])
def test_the_api_refuses_a_bad_filter_with_a_field_error(tenant, org, client_for, value):
    response = client_for(org["rep"]).get("/api/v1/notifications/", {"unread": value})
    assert response.status_code == 400 and "unread" in response.json()["errors"]


def test_api_keys_get_403_on_notifications(tenant, org):
    from rest_framework.test import APIClient

    _key, raw = api_key_for(tenant)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    item = note(tenant, org["rep"])
    assert api.get("/api/v1/notifications/").status_code == 403
    assert api.post(f"/api/v1/notifications/{item.pk}/read/").status_code == 403


def test_the_api_needs_a_signed_in_member(client, tenant):
    assert client.get("/api/v1/notifications/").status_code in (401, 403)
