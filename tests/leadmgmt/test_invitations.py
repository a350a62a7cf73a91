"""Invitations: the emailed link (over a real SMTP server) is single use, expires, dies when re-sent, and makes
an active membership with the invited role, team and capacity; an existing user joins a second tenant."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.invitations import (
    InvitationUnusable,
    invitation_accept,
    invitation_for_token,
    invitation_resend,
    invitation_revoke,
    invitation_send,
)
from leadmgmt.tenancy.models import Invitation, Membership, Role
from leadmgmt.tenancy.services import DEFAULT_TEAM
from tests.support.factories import TeamFactory
from tests.support.sla import smtp_server  # noqa: F401 (fixture)
from tests.support.team import invitation_link, tenant_admin, token_of

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "correct-horse-battery-42"


@pytest.fixture
def boss(tenant):
    return tenant_admin(tenant, "boss@acme.test")


def send(tenant, boss, email="new.rep@acme.test", **fields):
    fields.setdefault("role", Role.SDR)
    return invitation_send(tenant=tenant, email=email, actor=Actor.for_user(boss), **fields)


def test_the_invitation_email_goes_over_smtp_with_a_link_to_the_public_address(
        tenant, boss, smtp_server, settings, django_capture_on_commit_callbacks):  # noqa: F811
    settings.PUBLIC_BASE_URL = "https://leads.acme.test"
    team = TeamFactory(tenant=tenant, name="SDR EMEA")
    with django_capture_on_commit_callbacks(execute=True):
        sent = send(tenant, boss, email=" New.Rep@Acme.test ", team=team, capacity=30)

    assert sent.delivered is True
    [mail] = smtp_server.messages
    assert mail["to"] == ["new.rep@acme.test"]
    assert "Acme Corp" in mail["subject"]
    link = invitation_link(mail["body"])
    assert link.startswith("https://leads.acme.test/invite/") and link == sent.link
    assert "SDR EMEA" in mail["body"] and "boss@acme.test" in mail["body"]
    invitation = Invitation.objects.unscoped().get(tenant=tenant)
    assert token_of(link) not in invitation.token_hash, "only a hash of the token is stored"
    assert (invitation.email, invitation.role, invitation.team, invitation.capacity) == (
        "new.rep@acme.test", "sdr", team, 30)
    assert invitation.expires_at - invitation.sent_at == timedelta(days=7)
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="invitation.created").count() == 1


def test_the_link_creates_the_account_and_an_active_membership(tenant, boss):
    sent = send(tenant, boss, role=Role.AE, capacity=12)
    token = token_of(sent.link)

    membership = invitation_accept(raw=token, password=GOOD_PASSWORD, first_name="Nia", last_name="Rep")

    user = get_user_model().objects.get(username="new.rep@acme.test")
    assert user.check_password(GOOD_PASSWORD) and user.get_full_name() == "Nia Rep"
    assert (membership.tenant, membership.user, membership.role, membership.capacity, membership.is_active) == (
        tenant, user, "ae", 12, True)
    assert membership.team.name == DEFAULT_TEAM, "an AE without a team joins the default team"
    invitation = Invitation.objects.unscoped().get(pk=sent.invitation.pk)
    assert invitation.accepted_by == user and invitation.accepted_at is not None
    actions = set(AuditEvent.objects.unscoped().filter(tenant=tenant).values_list("action", flat=True))
    assert {"invitation.created", "invitation.accepted", "membership.created"} <= actions


def test_a_used_link_cannot_be_used_again(tenant, boss):
    token = token_of(send(tenant, boss).link)
    invitation_accept(raw=token, password=GOOD_PASSWORD)

    with pytest.raises(InvitationUnusable) as excinfo:
        invitation_accept(raw=token, password="another-good-pass-77")
    assert excinfo.value.state == "accepted"
    assert Membership.objects.unscoped().filter(tenant=tenant, user__username="new.rep@acme.test").count() == 1


def test_an_expired_link_is_refused_and_writes_nothing(tenant, boss):
    token = token_of(send(tenant, boss).link)
    later = timezone.now() + timedelta(days=7, minutes=1)

    with pytest.raises(InvitationUnusable) as excinfo:
        invitation_accept(raw=token, password=GOOD_PASSWORD, now=later)
    assert excinfo.value.state == "expired" and "expired" in str(excinfo.value)
    assert not get_user_model().objects.filter(username="new.rep@acme.test").exists()


@pytest.mark.parametrize("raw", ["", "forged-token", "x" * 500])
def test_a_forged_link_is_refused(tenant, boss, raw):
    send(tenant, boss)
    with pytest.raises(InvitationUnusable) as excinfo:
        invitation_for_token(raw=raw)
    assert excinfo.value.state == "invalid"


def test_resending_kills_the_previous_link_and_extends_the_expiry(tenant, boss):
    first = send(tenant, boss)
    second = invitation_resend(invitation=first.invitation, actor=Actor.for_user(boss),
                               now=timezone.now() + timedelta(days=6))

    with pytest.raises(InvitationUnusable):
        invitation_for_token(raw=token_of(first.link))
    invitation = invitation_for_token(raw=token_of(second.link), now=timezone.now() + timedelta(days=12))
    assert invitation.pk == first.invitation.pk and invitation.send_count == 2


def test_inviting_the_same_email_again_updates_and_resends_the_open_invitation(tenant, boss):
    first = send(tenant, boss)
    second = send(tenant, boss, role=Role.MANAGER)
    assert Invitation.objects.unscoped().filter(tenant=tenant).count() == 1
    assert invitation_for_token(raw=token_of(second.link)).role == Role.MANAGER
    with pytest.raises(InvitationUnusable):
        invitation_for_token(raw=token_of(first.link))


def test_a_withdrawn_invitation_link_stops_working(tenant, boss):
    sent = send(tenant, boss)
    invitation_revoke(invitation=sent.invitation, actor=Actor.for_user(boss))
    with pytest.raises(InvitationUnusable) as excinfo:
        invitation_for_token(raw=token_of(sent.link))
    assert excinfo.value.state == "revoked"


def test_an_existing_user_joins_a_second_tenant_only_when_signed_in_as_themselves(tenant, other_tenant, boss):
    from tests.support.workspace import person

    rep = person(other_tenant, username="rep@globex.test")
    token = token_of(send(tenant, boss, email="rep@globex.test", role=Role.SDR).link)

    with pytest.raises(ValidationError, match="Sign in as rep@globex.test"):
        invitation_accept(raw=token, password=GOOD_PASSWORD)
    membership = invitation_accept(raw=token, user=rep)

    assert membership.user == rep and membership.tenant == tenant
    assert get_user_model().objects.get(pk=rep.pk).check_password("pw-for-tests-123"), "password unchanged"
    assert Membership.objects.unscoped().filter(user=rep).count() == 2


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"email": "not-an-email"}, "email", "valid email"),
    ({"role": "wizard"}, "role", "Unknown role"),
    ({"capacity": -1}, "capacity", "below zero"),
])
def test_bad_invitations_are_field_errors(tenant, boss, fields, field, message):
    with pytest.raises(ValidationError) as excinfo:
        send(tenant, boss, **fields)
    assert any(message in m for m in excinfo.value.message_dict[field])
    assert not Invitation.objects.unscoped().exists()


def test_a_team_of_another_tenant_is_refused(tenant, other_tenant, boss):
    with pytest.raises(ValidationError) as excinfo:
        send(tenant, boss, team=TeamFactory(tenant=other_tenant))
    assert "team" in excinfo.value.message_dict


def test_an_active_member_cannot_be_invited_again(tenant, boss):
    with pytest.raises(ValidationError) as excinfo:
        send(tenant, boss, email="boss@acme.test")
    assert "already a member" in excinfo.value.message_dict["email"][0]


def test_a_weak_password_is_refused_on_the_password_field(tenant, boss):
    token = token_of(send(tenant, boss).link)
    with pytest.raises(ValidationError) as excinfo:
        invitation_accept(raw=token, password="password")
    assert "new_password1" in excinfo.value.message_dict
    assert invitation_for_token(raw=token).accepted_at is None, "the link still works"


def test_a_mail_server_that_is_down_keeps_the_invitation_and_says_so(
        tenant, boss, settings, django_capture_on_commit_callbacks):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    with django_capture_on_commit_callbacks(execute=True):
        sent = send(tenant, boss)
    assert sent.delivered is False and sent.error
    assert invitation_for_token(raw=token_of(sent.link)).pk == sent.invitation.pk
