"""The product shell: sign-in and sign-out, the workspace picker and switch, the active tenant on every page."""
from __future__ import annotations

import pytest
from django.test import Client

from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Role
from tests.support.factories import MembershipFactory, TenantFactory
from tests.support.workspace import PASSWORD, person

pytestmark = pytest.mark.django_db


def test_login_page_renders_and_signs_in_to_the_queue(tenant):
    rep = person(tenant, username="ann@acme.test")
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    response = client.post("/accounts/login/", {"username": "ann@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/queue/"
    queue = client.get("/queue/")
    assert queue.status_code == 200
    assert b"Acme Corp" in queue.content and b'data-testid="active-tenant"' in queue.content
    assert rep.get_username().encode() in queue.content


def test_wrong_password_shows_the_error_and_no_session(tenant):
    person(tenant, username="ann@acme.test")
    client = Client()
    response = client.post("/accounts/login/", {"username": "ann@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert b"form-errors" in response.content
    assert client.get("/queue/")["Location"].startswith("/accounts/login/?next=/queue/")


def test_anonymous_is_sent_to_sign_in(db):
    response = Client().get("/queue/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/queue/"


def test_logout_needs_post_and_signs_out(tenant, signed_in):
    client = signed_in(person(tenant), tenant)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 200 and b"You are signed out" in response.content
    assert client.get("/queue/").status_code == 302


def test_admin_login_still_works(db, django_user_model):
    django_user_model.objects.create_superuser("root", "root@x.test", PASSWORD)
    client = Client()
    assert client.get("/admin/login/").status_code == 200
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_member_of_several_tenants_picks_one_after_sign_in(tenant, other_tenant):
    user = person(tenant, username="multi@acme.test")
    MembershipFactory(tenant=other_tenant, user=user, role=Role.MANAGER)
    client = Client()
    client.post("/accounts/login/", {"username": "multi@acme.test", "password": PASSWORD})
    response = client.get("/queue/")
    assert response.status_code == 302 and response["Location"] == "/tenant/switch/?next=%2Fqueue%2F"
    picker = client.get(response["Location"])
    assert picker.status_code == 200
    assert b"Choose a workspace" in picker.content and b"Acme Corp" in picker.content and b"Globex" in picker.content
    assert b'name="next" value="/queue/"' in picker.content
    # A filtered queue URL survives the picker intact.
    filtered = client.get("/queue/?source=webinar&page=2")
    assert filtered["Location"] == "/tenant/switch/?next=%2Fqueue%2F%3Fsource%3Dwebinar%26page%3D2"

    switched = client.post("/tenant/switch/", {"tenant": other_tenant.pk, "next": "/queue/"})
    assert switched.status_code == 302 and switched["Location"] == "/queue/"
    assert client.session[SESSION_TENANT_KEY] == other_tenant.pk
    queue = client.get("/queue/")
    assert queue.status_code == 200
    assert b'data-testid="active-tenant">Globex<' in queue.content
    # The switcher is in the top bar, with the active tenant selected.
    assert b'action="/tenant/switch/"' in queue.content
    assert f'value="{other_tenant.pk}" selected'.encode() in queue.content


def test_switch_to_a_tenant_you_are_not_in_is_404(tenant, other_tenant, signed_in):
    client = signed_in(person(tenant), tenant)
    assert client.post("/tenant/switch/", {"tenant": other_tenant.pk}).status_code == 404
    assert client.post("/tenant/switch/", {"tenant": "not-a-number"}).status_code == 404
    assert client.session[SESSION_TENANT_KEY] == tenant.pk


def test_switch_to_an_inactive_tenant_is_404(tenant, signed_in):
    closed = TenantFactory(slug="closed", name="Closed", is_active=False)
    user = person(tenant)
    MembershipFactory(tenant=closed, user=user)
    assert signed_in(user, tenant).post("/tenant/switch/", {"tenant": closed.pk}).status_code == 404


def test_switch_ignores_an_offsite_next(tenant, other_tenant, signed_in):
    user = person(tenant)
    MembershipFactory(tenant=other_tenant, user=user)
    response = signed_in(user, tenant).post("/tenant/switch/", {"tenant": other_tenant.pk,
                                                                "next": "https://evil.example/"})
    assert response["Location"] == "/queue/"


def test_switch_without_csrf_token_is_refused(tenant, other_tenant, signed_in):
    user = person(tenant)
    MembershipFactory(tenant=other_tenant, user=user)
    client = signed_in(user, tenant, enforce_csrf_checks=True)
    response = client.post("/tenant/switch/", {"tenant": other_tenant.pk})
    assert response.status_code == 403
    assert client.session[SESSION_TENANT_KEY] == tenant.pk


def test_single_tenant_member_sees_no_switcher_and_nav_by_role(tenant, signed_in):
    rep_page = signed_in(person(tenant), tenant).get("/queue/").content
    assert b'action="/tenant/switch/"' not in rep_page
    assert b'href="/queue/"' in rep_page and b'href="/manager/"' not in rep_page and b'href="/dashboard/"' not in rep_page
    manager_page = signed_in(person(tenant, role=Role.MANAGER), tenant).get("/queue/").content
    assert b'href="/manager/"' in manager_page and b'href="/dashboard/"' in manager_page
    ops_page = signed_in(person(tenant, role=Role.MARKETING_OPS), tenant).get("/queue/").content
    assert b'href="/manager/"' not in ops_page and b'href="/dashboard/"' in ops_page


def test_user_without_membership_gets_a_friendly_page(db, django_user_model, signed_in):
    user = django_user_model.objects.create_user("loner", password=PASSWORD)
    response = signed_in(user).get("/queue/")
    assert response.status_code == 403 and b"not in a workspace" in response.content


def test_friendly_404_page(tenant, signed_in):
    response = signed_in(person(tenant), tenant).get("/no-such-page/")
    assert response.status_code == 404
    assert b"find that page" in response.content and b"Acme Corp" in response.content


def test_home_page_still_renders(db):
    assert Client().get("/").status_code == 200


def test_error_pages_render_without_a_request_context(db):
    from django.template.loader import render_to_string

    assert "Something went wrong" in render_to_string("500.html")
    assert "can't send this form" in render_to_string("403_csrf.html")
