"""The Team page and the invitation link: tenant admins only, tenant-scoped (another tenant's ids are 404s),
bad input is 400 with field errors, the emailed link sets a password and signs in, dead links are 400/410."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.invitations import invitation_send
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Invitation, Membership, Role
from tests.support.factories import TeamFactory
from tests.support.routing import membership
from tests.support.sla import smtp_server  # noqa: F401 (fixture)
from tests.support.team import invitation_link, tenant_admin, token_of
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "correct-horse-battery-42"


@pytest.fixture
def boss(tenant):
    return tenant_admin(tenant, "boss@acme.test")


@pytest.fixture
def admin_client(boss, tenant, signed_in):
    return signed_in(boss, tenant)


@pytest.fixture
def rival(other_tenant):
    """Another tenant with its admin, a rep, and an open invitation."""
    their_boss = tenant_admin(other_tenant, "boss@globex.test")
    rep = person(other_tenant, username="secret.rep@globex.test")
    sent = invitation_send(tenant=other_tenant, email="newbie@globex.test", role=Role.SDR,
                           actor=Actor.for_user(their_boss))
    return {"rep": rep, "membership": membership(other_tenant, rep), "invitation": sent.invitation}


def invite(tenant, boss, email="new.rep@acme.test", **fields):
    fields.setdefault("role", Role.SDR)
    return invitation_send(tenant=tenant, email=email, actor=Actor.for_user(boss), **fields)


# --- the Team page ------------------------------------------------------------------------------------


def test_admin_sees_members_with_their_details_and_open_invitations(admin_client, tenant, boss,
                                                                    django_assert_max_num_queries):
    team = TeamFactory(tenant=tenant, name="SDR EMEA")
    rep = person(tenant, team=team, username="ann@acme.test", capacity=25)
    owned_lead(tenant, rep)
    for n in range(5):
        person(tenant, username=f"extra{n}@acme.test")
    invite(tenant, boss, email="pending@acme.test", team=team)

    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("team"))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-member="ann@acme.test"' in html and "SDR EMEA" in html and "25" in html
    assert 'data-invitation="pending@acme.test"' in html
    members = {m.user.username: m for m in response.context["members"]}
    assert members["ann@acme.test"].open_leads == 1
    assert 'href="/team/"' in html, "admins get the Team tab"


def test_team_page_query_count_does_not_grow_with_members(admin_client, tenant, django_assert_max_num_queries):
    for n in range(30):
        person(tenant, username=f"rep{n}@acme.test")
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("team")).status_code == 200


def test_another_tenants_members_and_invitations_stay_invisible(admin_client, rival):
    html = admin_client.get(reverse("team")).content.decode()
    assert "secret.rep@globex.test" not in html and "newbie@globex.test" not in html


@pytest.mark.parametrize("name", ["team-member", "team-member-deactivate", "team-member-reactivate"])
def test_another_tenants_member_is_a_404(admin_client, rival, name):
    url = reverse(name, args=[rival["membership"].pk])
    response = admin_client.get(url) if name == "team-member" else admin_client.post(url)
    assert response.status_code == 404
    assert Membership.objects.unscoped().get(pk=rival["membership"].pk).is_active


@pytest.mark.parametrize("name", ["team-invitation-resend", "team-invitation-revoke"])
def test_another_tenants_invitation_is_a_404(admin_client, rival, name):
    assert admin_client.post(reverse(name, args=[rival["invitation"].pk])).status_code == 404
    row = Invitation.objects.unscoped().get(pk=rival["invitation"].pk)
    assert row.revoked_at is None and row.send_count == 1


def test_editing_another_tenants_member_is_a_404(admin_client, rival):
    response = admin_client.post(reverse("team-member", args=[rival["membership"].pk]), {"role": "admin"})
    assert response.status_code == 404
    assert Membership.objects.unscoped().get(pk=rival["membership"].pk).role == Role.SDR


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER, Role.MARKETING_OPS])
def test_other_roles_are_refused_everywhere(tenant, boss, signed_in, role):
    user = person(tenant, role=role, username=f"{role}@acme.test")
    client = signed_in(user, tenant)
    target = membership(tenant, boss)
    sent = invite(tenant, boss)

    assert client.get(reverse("team")).status_code == 403
    assert client.post(reverse("team-invite"), {"email": "x@acme.test", "role": "admin"}).status_code == 403
    assert client.get(reverse("team-member", args=[target.pk])).status_code == 403
    assert client.post(reverse("team-member", args=[target.pk]), {"role": "sdr"}).status_code == 403
    assert client.post(reverse("team-member-deactivate", args=[target.pk])).status_code == 403
    assert client.post(reverse("team-invitation-revoke", args=[sent.invitation.pk])).status_code == 403
    assert membership(tenant, boss).is_active and membership(tenant, boss).role == Role.ADMIN
    assert not Invitation.objects.unscoped().filter(email="x@acme.test").exists()
    assert 'href="/team/"' not in client.get(reverse("queue")).content.decode(), "no Team tab"


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("team"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_admin_invites_by_email_over_smtp(admin_client, tenant, smtp_server,  # noqa: F811
                                         django_capture_on_commit_callbacks):
    team = TeamFactory(tenant=tenant, name="AE West")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("team-invite"), {
            "email": "Closer@Acme.test", "role": "ae", "team": team.pk, "capacity": "15"})

    assert response.status_code == 302 and response["Location"] == reverse("team")
    [mail] = smtp_server.messages
    assert mail["to"] == ["closer@acme.test"] and "/invite/" in invitation_link(mail["body"])
    row = Invitation.objects.unscoped().get(tenant=tenant)
    assert (row.role, row.team, row.capacity) == ("ae", team, 15)


def test_invite_without_a_team_puts_an_sdr_in_the_default_team(admin_client, tenant):
    admin_client.post(reverse("team-invite"), {"email": "sdr@acme.test", "role": "sdr", "team": "", "capacity": ""})
    assert Invitation.objects.unscoped().get(tenant=tenant).team.name == "Sales Development"


@pytest.mark.parametrize(("data", "field"), [
    ({"email": "nope", "role": "sdr"}, "email"),
    ({"email": "", "role": "sdr"}, "email"),
    ({"email": "a@acme.test", "role": "wizard"}, "role"),
    ({"email": "a@acme.test", "role": "sdr", "capacity": "-3"}, "capacity"),
    ({"email": "a@acme.test", "role": "sdr", "capacity": "lots"}, "capacity"),
    ({"email": "boss@acme.test", "role": "sdr"}, "email"),
])
def test_bad_invitations_are_400_with_field_errors(admin_client, data, field):
    response = admin_client.post(reverse("team-invite"), data)
    assert response.status_code == 400
    assert response.context["invite_form"].errors[field]
    assert not Invitation.objects.unscoped().exists()


def test_a_team_of_another_tenant_is_a_field_error(admin_client, other_tenant):
    theirs = TeamFactory(tenant=other_tenant, name="Their team")
    response = admin_client.post(reverse("team-invite"), {"email": "a@acme.test", "role": "sdr", "team": theirs.pk})
    assert response.status_code == 400 and response.context["invite_form"].errors["team"]


def test_admin_resends_and_withdraws_an_invitation(admin_client, tenant, boss):
    sent = invite(tenant, boss)
    assert admin_client.post(reverse("team-invitation-resend", args=[sent.invitation.pk])).status_code == 302
    assert Invitation.objects.unscoped().get(pk=sent.invitation.pk).send_count == 2
    assert Client().get(reverse("invitation-accept", args=[token_of(sent.link)])).status_code == 400
    assert admin_client.post(reverse("team-invitation-revoke", args=[sent.invitation.pk])).status_code == 302
    assert Invitation.objects.unscoped().get(pk=sent.invitation.pk).revoked_at is not None


def test_admin_changes_a_members_role_team_capacity_and_availability(admin_client, tenant):
    rep = person(tenant, username="rep@acme.test")
    team = TeamFactory(tenant=tenant, name="SDR EMEA")
    url = reverse("team-member", args=[membership(tenant, rep).pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"role": "ae", "team": team.pk, "capacity": "30"})

    assert response.status_code == 302
    changed = membership(tenant, rep)
    assert (changed.role, changed.team, changed.capacity, changed.is_available) == ("ae", team, 30, False)
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="membership.updated").exists()


def test_bad_member_edits_are_400_with_field_errors(admin_client, tenant, other_tenant):
    rep = person(tenant, username="rep@acme.test")
    url = reverse("team-member", args=[membership(tenant, rep).pk])
    response = admin_client.post(url, {"role": "sdr", "capacity": "-1",
                                       "team": TeamFactory(tenant=other_tenant).pk})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"capacity", "team"}


def test_the_last_admin_cannot_demote_or_deactivate_themselves(admin_client, tenant, boss):
    mine = membership(tenant, boss)
    demote = admin_client.post(reverse("team-member", args=[mine.pk]), {"role": "manager", "is_available": "on"})
    deactivate = admin_client.post(reverse("team-member-deactivate", args=[mine.pk]))

    assert demote.status_code == 400 and "active tenant admin" in demote.context["form"].errors["role"][0]
    assert deactivate.status_code == 400 and "active tenant admin" in deactivate.content.decode()
    assert membership(tenant, boss).role == Role.ADMIN and membership(tenant, boss).is_active


def test_a_deactivated_member_cannot_use_the_tenant_until_reactivated(admin_client, tenant, signed_in):
    rep = person(tenant, username="rep@acme.test")
    owned_lead(tenant, rep)
    rep_client = signed_in(rep, tenant)
    assert rep_client.get(reverse("queue")).status_code == 200

    response = admin_client.post(reverse("team-member-deactivate", args=[membership(tenant, rep).pk]), follow=True)
    assert "1 open lead still belongs to them" in response.content.decode()

    assert rep_client.get(reverse("queue")).status_code == 403
    assert rep_client.get("/api/v1/leads/").status_code == 403
    admin_client.post(reverse("team-member-reactivate", args=[membership(tenant, rep).pk]))
    assert rep_client.get(reverse("queue")).status_code == 200


# --- the invitation link ------------------------------------------------------------------------------


def test_the_link_sets_a_password_signs_in_and_lands_in_the_queue(tenant, boss):
    sent = invite(tenant, boss, role=Role.SDR)
    client = Client()
    url = reverse("invitation-accept", args=[token_of(sent.link)])
    page = client.get(url)
    assert page.status_code == 200 and "Acme Corp" in page.content.decode()

    response = client.post(url, {"first_name": "Nia", "last_name": "Rep", "new_password1": GOOD_PASSWORD,
                                 "new_password2": GOOD_PASSWORD})

    assert response.status_code == 302 and response["Location"] == reverse("queue")
    assert client.session[SESSION_TENANT_KEY] == tenant.pk
    assert client.get(reverse("queue")).status_code == 200
    user = get_user_model().objects.get(username="new.rep@acme.test")
    assert membership(tenant, user).role == Role.SDR
    assert client.get(url).status_code == 410, "the link is spent"


@pytest.mark.parametrize(("data", "field"), [
    ({"new_password1": "password", "new_password2": "password"}, "new_password1"),
    ({"new_password1": "short1", "new_password2": "short1"}, "new_password1"),
    ({"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD + "x"}, "new_password2"),
    ({"new_password1": "", "new_password2": ""}, "new_password1"),
])
def test_bad_passwords_are_400_with_field_errors(tenant, boss, data, field):
    sent = invite(tenant, boss)
    response = Client().post(reverse("invitation-accept", args=[token_of(sent.link)]), data)
    assert response.status_code == 400 and response.context["form"].errors[field]
    assert not get_user_model().objects.filter(username="new.rep@acme.test").exists()


def test_a_forged_link_is_400_and_an_expired_or_withdrawn_one_is_410(tenant, boss):
    assert Client().get(reverse("invitation-accept", args=["not-a-real-token"])).status_code == 400
    expired = invite(tenant, boss, email="late@acme.test")
    Invitation.objects.unscoped().filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1))
    response = Client().post(reverse("invitation-accept", args=[token_of(expired.link)]),
                             {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert response.status_code == 410 and "expired" in response.content.decode()
    withdrawn = invite(tenant, boss, email="gone@acme.test")
    Invitation.objects.unscoped().filter(pk=withdrawn.invitation.pk).update(revoked_at=timezone.now())
    assert Client().get(reverse("invitation-accept", args=[token_of(withdrawn.link)])).status_code == 410
    assert not get_user_model().objects.filter(username__in=["late@acme.test", "gone@acme.test"]).exists()


def test_an_existing_user_signs_in_then_joins_and_switches_to_the_new_tenant(tenant, other_tenant, boss, signed_in):
    rep = person(other_tenant, username="rep@globex.test")
    sent = invite(tenant, boss, email="rep@globex.test", role=Role.AE)
    url = reverse("invitation-accept", args=[token_of(sent.link)])

    anonymous = Client().get(url)
    assert anonymous.status_code == 200 and f"{reverse('login')}?next=" in anonymous.content.decode()
    client = signed_in(rep, other_tenant)
    assert client.get(url).status_code == 200
    response = client.post(url)

    assert response.status_code == 302 and response["Location"] == reverse("queue")
    assert client.session[SESSION_TENANT_KEY] == tenant.pk
    assert membership(tenant, rep).role == Role.AE


def test_someone_signed_in_as_another_person_cannot_take_the_invitation(tenant, boss, signed_in):
    sent = invite(tenant, boss)
    intruder = signed_in(person(tenant, username="someone@acme.test"), tenant)
    url = reverse("invitation-accept", args=[token_of(sent.link)])
    response = intruder.post(url, {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD})
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="new.rep@acme.test").exists()
