"""Sign-in lockout (django-axes) on both login pages, its cool-off and audit trail, and the rate-limited reset form."""
from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.utils import timezone

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from tests.support.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-123"
LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


def sign_in(path: str, username: str, password: str, ip: str = "198.51.100.10", **extra):
    client = Client(REMOTE_ADDR=ip, **extra)
    return client, client.post(path, {"username": username, "password": password})


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def member(tenant):
    user = UserFactory(username="ada@acme.example", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
    return user


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_five_wrong_passwords_then_the_right_one_is_refused_with_the_lockout_page(path, member):
    for _ in range(5):
        _client, response = sign_in(path, member.username, "wrong-password")
    assert response.status_code == 429

    client, response = sign_in(path, member.username, PASSWORD)

    assert response.status_code == 429 and not signed_in(client)
    html = response.content.decode()
    assert "Too many failed sign-ins" in html and "Try again in 15 minutes" in html


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_four_wrong_passwords_do_not_lock_and_a_success_resets_the_count(path, member):
    for _ in range(4):
        _client, response = sign_in(path, member.username, "wrong-password")
        assert response.status_code == 200
    client, _response = sign_in(path, member.username, PASSWORD)
    assert signed_in(client)
    for _ in range(4):
        sign_in(path, member.username, "wrong-password")
    client, _response = sign_in(path, member.username, PASSWORD)
    assert signed_in(client)


def test_a_lockout_on_one_page_holds_on_the_other(member):
    for _ in range(5):
        sign_in("/accounts/login/", member.username, "wrong-password")
    client, response = sign_in("/admin/login/", member.username, PASSWORD)
    assert response.status_code == 429 and not signed_in(client)


def test_the_cool_off_ends_the_lockout(member, settings):
    for _ in range(5):
        sign_in("/accounts/login/", member.username, "wrong-password")
    assert sign_in("/accounts/login/", member.username, PASSWORD)[1].status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=16))

    client, response = sign_in("/accounts/login/", member.username, PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_another_user_and_another_ip_are_not_locked_out(member, tenant):
    other = UserFactory(username="grace@acme.example")
    MembershipFactory(tenant=tenant, user=other, role=Role.SDR)
    for _ in range(5):
        sign_in("/accounts/login/", member.username, "wrong-password", ip="198.51.100.10")

    assert signed_in(sign_in("/accounts/login/", other.username, PASSWORD, ip="198.51.100.10")[0])
    assert signed_in(sign_in("/accounts/login/", member.username, PASSWORD, ip="203.0.113.77")[0])


def test_a_spoofed_forwarded_for_does_not_dodge_the_lockout(member):
    for n in range(5):
        sign_in("/accounts/login/", member.username, "wrong-password", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    client, response = sign_in("/accounts/login/", member.username, PASSWORD,
                               HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429 and not signed_in(client)


def test_a_lockout_is_audited_on_each_tenant_of_the_account(member, tenant, other_tenant):
    MembershipFactory(tenant=other_tenant, user=member, role=Role.SDR)
    for _ in range(6):
        sign_in("/admin/login/", member.username, "wrong-password", ip="203.0.113.5")

    events = AuditEvent.objects.unscoped().filter(action="auth.locked_out")
    assert sorted(e.tenant_id for e in events) == sorted([tenant.pk, other_tenant.pk])
    event = events.first()
    assert event.object_id == str(member.pk) and event.actor_name == "Sign-in lockout"
    assert event.metadata["ip_address"] == "203.0.113.5" and event.metadata["path"] == "/admin/login/"
    assert event.metadata["cooloff_minutes"] == 15


def test_a_lockout_of_an_unknown_username_is_logged_but_not_audited(tenant, caplog):
    for _ in range(5):
        sign_in("/accounts/login/", "nobody@nowhere.example", "wrong-password")
    assert not AuditEvent.objects.unscoped().filter(action="auth.locked_out").exists()
    assert any("sign-in locked out" in r.getMessage() and "nobody@nowhere.example" in r.getMessage()
               for r in caplog.records)


# --- password reset ---------------------------------------------------------------------------------


def request_reset(email: str, ip: str = "198.51.100.20"):
    return Client(REMOTE_ADDR=ip).post("/accounts/password_reset/", {"email": email})


def test_the_reset_form_sends_up_to_the_limit_per_email_then_refuses_without_mail(member, settings):
    settings.PASSWORD_RESET_LIMIT_PER_HOUR = 3
    for n in range(3):
        assert request_reset(member.email, ip=f"198.51.100.{n + 1}").status_code == 302
    assert len(mail.outbox) == 3

    refused = request_reset(member.email, ip="198.51.100.99")

    assert refused.status_code == 429 and "Too many password reset requests" in refused.content.decode()
    assert len(mail.outbox) == 3


def test_the_reset_form_is_limited_per_ip_across_addresses(member, settings):
    settings.PASSWORD_RESET_LIMIT_PER_HOUR = 2
    assert request_reset("x1@nowhere.example").status_code == 302
    assert request_reset("x2@nowhere.example").status_code == 302
    assert request_reset(member.email).status_code == 429
    assert mail.outbox == []
    assert request_reset(member.email, ip="203.0.113.8").status_code == 302 and len(mail.outbox) == 1


def test_the_reset_form_rejects_a_bad_email_with_a_field_error(db):
    response = Client().post("/accounts/password_reset/", {"email": "not-an-email"})
    assert response.status_code == 200 and "email" in response.context["form"].errors


def test_the_lockout_page_stays_within_a_few_queries(member, django_assert_max_num_queries):
    for _ in range(5):
        sign_in("/accounts/login/", member.username, "wrong-password")
    with django_assert_max_num_queries(12):
        response = sign_in("/accounts/login/", member.username, PASSWORD)[1]
    assert response.status_code == 429
