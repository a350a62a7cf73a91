"""Notification emails go out at once: right after the transaction that created them commits (one task per
transaction), through a real SMTP server, ending with absolute links to the lead and to the notification
centre; the minute beat stays the safety net and never sends one twice; a rolled-back step emails nobody."""
from __future__ import annotations

import pytest
from django.db import transaction

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Role
from routing.models import EscalationAction, Notification, RoutingRule, Strategy
from routing.notifications import notification_emails_send, notify
from routing.services.aging import leads_aging_check
from routing.services.assign import lead_assign
from routing.services.sla_enforcement import sla_enforce
from routing.tasks import notification_emails_task
from tests.support.factories import LeadFactory
from tests.support.sla import (
    T0,
    assigned_lead,
    fresh,
    minutes,
    person,
    sales_team,
    sla_policy,
    smtp_server,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db


def beat_sweep(at) -> int:
    return notification_emails_task.apply(kwargs={"now": at.isoformat()}).get()


def email_batches(callbacks) -> list:
    return [c for c in callbacks if type(c).__name__ == "_EmailBatch"]


def test_a_hot_leads_new_owner_is_emailed_on_commit_with_absolute_links(
        tenant, settings, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    settings.PUBLIC_BASE_URL = "https://crm.acme.test"
    rep = person(tenant, email="rep@acme.test")
    hot = LeadFactory(tenant=tenant, first_name="Hot", last_name="Lead", company="Initech", band="sql", is_hot=True,
                      score=92)
    manager = Actor.for_user(person(tenant, role=Role.MANAGER))
    with django_capture_on_commit_callbacks(execute=True):
        lead_assign(lead=hot, owner=rep, actor=manager, trigger="manual_reroute", reason="Mine now", now=T0)
    assert [(m["to"], m["subject"]) for m in smtp_server.messages] == [
        (["rep@acme.test"], "[leadmgmt] Hot lead: Hot Lead (Initech)")]
    body = smtp_server.messages[0]["body"]
    assert f"Open the lead: https://crm.acme.test/leads/{hot.pk}/" in body
    assert "All your notifications: https://crm.acme.test/notifications/" in body
    assert "Workspace: Acme Corp" in body and "Score: 92" in body
    assert f"Lead: {hot.pk}" not in body, "no raw lead id"
    note = Notification.objects.unscoped().get(user=rep, lead=hot)
    assert note.emailed_at is not None
    # The minute beat, the safety net, finds nothing left to send.
    assert beat_sweep(T0 + minutes(1)) == 0 and len(smtp_server.messages) == 1


def test_a_cold_leads_new_owner_is_told_in_app_only(tenant, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    rep = person(tenant, email="rep@acme.test")
    cold = LeadFactory(tenant=tenant, band="cold")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lead_assign(lead=cold, owner=rep, actor=Actor.for_user(rep), trigger="manual_reroute", now=T0)
    assert email_batches(callbacks) == [] and smtp_server.messages == []
    assert Notification.objects.unscoped().filter(user=rep, lead=cold, email_due=False).count() == 1


def test_notifications_of_one_transaction_share_one_email_task(tenant, smtp_server,  # noqa: F811
                                                               django_capture_on_commit_callbacks):
    users = [person(tenant, email=f"m{i}@acme.test") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            for i, user in enumerate(users):
                notify(tenant=tenant, user=user, kind="sla_breach", title=f"Alert {i}", email=True)
            notify(tenant=tenant, user=users[0], kind="info", title="In-app only")
    assert len(email_batches(callbacks)) == 1
    assert sorted(m["subject"] for m in smtp_server.messages) == [f"[leadmgmt] Alert {i}" for i in range(3)]


def test_a_rolled_back_step_emails_nobody(tenant, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    user = person(tenant, email="boss@acme.test")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            notify(tenant=tenant, user=user, kind="sla_breach", title="Kept", email=True)
            try:
                with transaction.atomic():
                    notify(tenant=tenant, user=user, kind="sla_breach", title="Rolled back", email=True)
                    raise RuntimeError("the step failed")
            except RuntimeError:
                pass
    assert len(email_batches(callbacks)) == 1
    assert [m["subject"] for m in smtp_server.messages] == ["[leadmgmt] Kept"]


def test_the_sla_breach_alert_reaches_the_manager_at_once(tenant, smtp_server,  # noqa: F811
                                                          django_capture_on_commit_callbacks):
    team, boss, (owner, _) = sales_team(tenant, reps=2)
    boss.email = "boss@acme.test"
    boss.save(update_fields=["email"])
    RoutingRule.objects.unscoped().create(tenant=tenant, position=1, name="RR", strategy=Strategy.ROUND_ROBIN, team=team)
    sla_policy(tenant, minutes=5, steps=[(1, 0, EscalationAction.ALERT_MANAGER)])
    lead, _clock = assigned_lead(tenant, owner, first_name="Ada", last_name="Byron")
    with django_capture_on_commit_callbacks(execute=True):
        sla_enforce(now=T0 + minutes(6))
    alerts = [m for m in smtp_server.messages if m["to"] == ["boss@acme.test"]]
    assert [m["subject"] for m in alerts] == ["[leadmgmt] SLA breached: Ada Byron (Company)"]
    assert f"/leads/{lead.pk}/" in alerts[0]["body"]
    assert beat_sweep(T0 + minutes(7)) == 0


def test_the_aging_alert_is_emailed_at_once(tenant, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    _team, boss, (owner, _) = sales_team(tenant, reps=2)
    boss.email = "boss@acme.test"
    boss.save(update_fields=["email"])
    lead, _clock = assigned_lead(tenant, owner)
    with django_capture_on_commit_callbacks(execute=True):
        leads_aging_check(now=T0 + minutes(72 * 60))
    assert [m["to"] for m in smtp_server.messages] == [["boss@acme.test"]]
    assert fresh(Notification.objects.unscoped().get(user=boss, lead=lead)).emailed_at is not None


def test_an_immediate_send_only_takes_its_own_notifications(tenant, smtp_server):  # noqa: F811
    user = person(tenant, email="boss@acme.test")
    mine = notify(tenant=tenant, user=user, kind="sla_breach", title="Mine", email=True)
    other = notify(tenant=tenant, user=user, kind="sla_breach", title="Other", email=True)
    assert notification_emails_send(ids=[mine.pk]) == 1
    assert fresh(other).emailed_at is None and [m["subject"] for m in smtp_server.messages] == ["[leadmgmt] Mine"]
    assert notification_emails_send(ids=[mine.pk]) == 0, "never twice"
    assert beat_sweep(T0) == 1 and len(smtp_server.messages) == 2
