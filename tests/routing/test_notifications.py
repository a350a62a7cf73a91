"""Notifications: in-app rows, dedup on re-runs, the new owner told (by email when hot), who counts as a
manager, and emails delivered once through a real SMTP server by the beat task."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Role
from routing.models import Notification
from routing.notifications import managers_for, notification_emails_send, notify
from routing.services.assign import lead_assign
from routing.tasks import notification_emails_task
from tests.support.factories import LeadFactory, TeamFactory
from tests.support.sla import T0, fresh, minutes, person, sales_team, smtp_server  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def send(at) -> int:
    return notification_emails_task.apply(kwargs={"now": at.isoformat()}).get()


def test_notify_writes_an_in_app_row_and_a_dedup_key_makes_reruns_notify_once(tenant):
    user = person(tenant)
    lead = LeadFactory(tenant=tenant)
    first = notify(tenant=tenant, user=user, kind="sla_breach", title="Late", lead=lead, email=True, dedup_key="sla:1:1")
    again = notify(tenant=tenant, user=user, kind="sla_breach", title="Late", lead=lead, email=True, dedup_key="sla:1:1")
    assert first is not None and again is None
    assert Notification.objects.unscoped().filter(user=user).count() == 1
    row = Notification.objects.unscoped().get(pk=first.pk)
    assert (row.kind, row.lead_id, row.email_due, row.read_at, row.emailed_at) == ("sla_breach", lead.pk, True, None, None)
    # Without a key every call is its own notification.
    notify(tenant=tenant, user=user, kind="info", title="a")
    notify(tenant=tenant, user=user, kind="info", title="a")
    assert Notification.objects.unscoped().filter(user=user, kind="info").count() == 2


def test_the_new_owner_is_told_in_app_and_by_email_only_for_hot_leads(tenant, smtp_server):  # noqa: F811
    rep = person(tenant, email="rep@acme.test")
    cold = LeadFactory(tenant=tenant, first_name="Cold", last_name="Lead", band="cold")
    hot = LeadFactory(tenant=tenant, first_name="Hot", last_name="Lead", company="Initech", band="sql", is_hot=True,
                      score=92)
    manager = Actor.for_user(person(tenant, role=Role.MANAGER))
    for lead in (cold, hot):
        lead_assign(lead=lead, owner=rep, actor=manager, trigger="manual_reroute", reason="Mine now", now=T0)
    told = dict(Notification.objects.unscoped().filter(user=rep, kind="lead_assigned").values_list("lead_id", "email_due"))
    assert told == {cold.pk: False, hot.pk: True}
    assert send(T0 + minutes(1)) == 1
    assert [(m["to"], m["subject"]) for m in smtp_server.messages] == [
        (["rep@acme.test"], "[leadmgmt] Hot lead: Hot Lead (Initech)")]
    assert "Score: 92" in smtp_server.messages[0]["body"]


@pytest.mark.django_db(transaction=True)
def test_emails_are_sent_once_even_when_the_task_runs_twice_or_concurrently(smtp_server):  # noqa: F811
    from tests.support.factories import TenantFactory

    tenant = TenantFactory(slug="mail-corp")
    users = [person(tenant, email=f"m{i}@mail.test") for i in range(3)]
    # 30 due emails whose immediate task was lost (say the broker was down): the beat sweeps send them.
    Notification.objects.unscoped().bulk_create([
        Notification(tenant=tenant, user=users[i % 3], kind="sla_breach", title=f"Alert {i}", email_due=True)
        for i in range(30)])
    notify(tenant=tenant, user=users[0], kind="info", title="In-app only")
    barrier, sent = threading.Barrier(2), []

    def run():
        try:
            barrier.wait()
            sent.append(notification_emails_send(now=T0, limit=4))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent) == 30 and send(T0 + minutes(1)) == 0
    subjects = sorted(m["subject"] for m in smtp_server.messages)
    assert subjects == sorted(f"[leadmgmt] Alert {i}" for i in range(30))
    assert not Notification.objects.unscoped().filter(email_due=True, emailed_at__isnull=True).exists()
    assert Notification.objects.unscoped().get(kind="info").emailed_at is None


def test_an_unreachable_mail_server_leaves_emails_for_the_next_run(tenant, settings, smtp_server):  # noqa: F811
    user = person(tenant, email="boss@acme.test")
    note = notify(tenant=tenant, user=user, kind="sla_breach", title="Late", email=True)
    port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 9  # discard: nothing listens
    assert send(T0) == 0
    assert fresh(note).emailed_at is None
    settings.EMAIL_PORT = port
    assert send(T0 + minutes(1)) == 1
    assert len(smtp_server.messages) == 1 and fresh(note).emailed_at == T0 + minutes(1)


def test_a_user_without_an_email_address_is_marked_done_without_sending(tenant, smtp_server):  # noqa: F811
    user = person(tenant)
    user.email = ""
    user.save(update_fields=["email"])
    notify(tenant=tenant, user=user, kind="sla_breach", title="Late", email=True)
    assert send(T0) == 0 and smtp_server.messages == []
    assert not Notification.objects.unscoped().filter(emailed_at__isnull=True, email_due=True).exists()


def test_managers_are_the_team_manager_else_the_teams_managers_else_the_admins(tenant):
    team, boss, (rep, _) = sales_team(tenant)
    admin = person(tenant, role=Role.ADMIN)
    assert managers_for(tenant=tenant, user=rep) == [boss]
    team.manager = None
    team.save()
    second = person(tenant, role=Role.MANAGER, team=team)
    assert managers_for(tenant=tenant, user=rep) == [boss, second]
    assert managers_for(tenant=tenant, user=boss) == [second], "a manager is never their own escalation"
    loner = person(tenant)  # no team
    assert managers_for(tenant=tenant, user=loner) == [admin]
    empty_team = TeamFactory(tenant=tenant, name="No managers")
    assert managers_for(tenant=tenant, user=person(tenant, team=empty_team)) == [admin]


def test_managers_of_another_tenant_are_never_returned(tenant, other_tenant):
    _team, their_boss, (their_rep,) = sales_team(other_tenant, reps=1)
    their_admin = person(other_tenant, role=Role.ADMIN)
    admin = person(tenant, role=Role.ADMIN)
    # Their rep is also a member here, without a team: here the admins hear about them, not Globex's.
    from tests.support.factories import MembershipFactory

    MembershipFactory(tenant=tenant, user=their_rep, role=Role.SDR)
    assert managers_for(tenant=tenant, user=their_rep) == [admin]
    assert managers_for(tenant=other_tenant, user=their_rep) == [their_boss]
    assert their_admin not in managers_for(tenant=tenant, user=their_rep)
