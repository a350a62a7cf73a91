"""The escalation ladder run by the real beat task: breach, manager alert (in-app + email), reassignment
to the next eligible rep; each step once per breach, even re-run or run concurrently; tenant isolation."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Agent, AgentSetting, Role
from leads.models import Lead
from routing.models import (
    Assignment,
    BusinessHours,
    Escalation,
    EscalationAction,
    Notification,
    RoutingRule,
    SlaClock,
    Strategy,
    Trigger,
)
from routing.services.sla_enforcement import sla_enforce
from routing.tasks import notification_emails_task, sla_enforce_task
from tests.support.factories import LeadFactory, TeamFactory
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
from workspace.services.activities import activity_log

pytestmark = pytest.mark.django_db

ALERT, REASSIGN = EscalationAction.ALERT_MANAGER, EscalationAction.REASSIGN
DAY = 24 * 60


def beat(now: dt.datetime) -> dict:
    """One tick of the real beat task at a controlled time."""
    return sla_enforce_task.apply(kwargs={"now": now.isoformat()}).get()


@pytest.fixture
def desk(tenant):
    """A team (manager + 2 SDRs), a round-robin rule on it, and the seed ladder on a 5-minute SLA:
    alert the manager at breach, reassign 24 h later."""
    team, boss, reps = sales_team(tenant, reps=2)
    RoutingRule.objects.unscoped().create(tenant=tenant, position=1, name="SDR round-robin",
                                          strategy=Strategy.ROUND_ROBIN, team=team)
    policy = sla_policy(tenant, minutes=5, name="Hot/MQL web", steps=[(1, 0, ALERT), (2, DAY, REASSIGN)])
    return {"team": team, "manager": boss, "reps": reps, "policy": policy}


def escalations(lead):
    return list(Escalation.objects.unscoped().filter(lead=lead).order_by("level").values_list("level", "action"))


def test_nothing_happens_before_the_deadline(tenant, desk):
    lead, clock = assigned_lead(tenant, desk["reps"][0])
    assert beat(T0 + minutes(4))["breached"] == 0
    assert fresh(clock).breached_at is None and escalations(lead) == []


def test_a_breach_alerts_the_manager_once_even_when_the_beat_task_runs_twice(tenant, desk, smtp_server):  # noqa: F811
    owner, boss = desk["reps"][0], desk["manager"]
    lead, clock = assigned_lead(tenant, owner, first_name="Ada", last_name="Lovelace", company="Engines")
    first = beat(T0 + minutes(6))
    again = beat(T0 + minutes(6))
    assert (first["breached"], first["alerted"], first["escalations"]) == (1, 1, 1)
    assert again["clocks"] == 0 and again["escalations"] == 0
    clock = fresh(clock)
    assert (clock.breached_at, clock.level, clock.next_action_at) == (T0 + minutes(5), 1, T0 + minutes(5 + DAY))
    escalation = Escalation.objects.unscoped().get(lead=lead)
    assert (escalation.level, escalation.action, escalation.owner_id, escalation.target_id) == (1, ALERT, owner.pk, boss.pk)
    alert = Notification.objects.unscoped().get(user=boss)
    assert (alert.kind, alert.email_due, alert.lead_id) == ("sla_breach", True, lead.pk)
    assert Notification.objects.unscoped().filter(user=owner, kind="sla_breached").count() == 1
    actions = list(AuditEvent.objects.unscoped().filter(object_id=str(lead.pk), action__startswith="sla.")
                   .order_by("id").values_list("action", "actor_name"))
    assert actions == [("sla.started", "SLA Agent"), ("sla.breached", "SLA Agent"), ("sla.escalated", "SLA Agent")]

    # The manager's email goes out through a real SMTP server, once.
    assert notification_emails_task.apply(kwargs={"now": (T0 + minutes(7)).isoformat()}).get() == 1
    assert notification_emails_task.apply(kwargs={"now": (T0 + minutes(8)).isoformat()}).get() == 0
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["to"] == [boss.email] and message["subject"] == "[leadmgmt] SLA breached: Ada Lovelace (Engines)"
    assert fresh(alert).emailed_at == T0 + minutes(7)


def test_the_ladder_reassigns_to_the_next_eligible_rep_after_24_hours(tenant, desk):
    first_rep, second_rep = desk["reps"]
    lead, clock = assigned_lead(tenant, first_rep)
    beat(T0 + minutes(6))
    assert beat(T0 + minutes(DAY + 4))["escalations"] == 0  # 24 h after the deadline is 1 minute away
    result = beat(T0 + minutes(DAY + 5))
    assert (result["reassigned"], result["escalations"]) == (1, 1)
    lead = fresh(lead)
    assert lead.owner_id == second_rep.pk
    assert escalations(lead) == [(1, ALERT), (2, REASSIGN)]
    assert Escalation.objects.unscoped().get(lead=lead, level=2).target_id == second_rep.pk
    assignment = Assignment.objects.unscoped().filter(lead=lead).order_by("-at", "-id").first()
    assert (assignment.trigger, assignment.previous_owner_id, assignment.actor_name) == (
        Trigger.SLA_ESCALATION, first_rep.pk, "SLA Agent")
    old = fresh(clock)
    assert (old.stop_reason, old.level, old.next_action_at) == ("reassigned", 2, None)
    assert Escalation.objects.unscoped().get(lead=lead, level=1).resolved_at is not None
    new = SlaClock.objects.unscoped().get(lead=lead, stopped_at__isnull=True)
    assert (new.owner_id, new.level, new.due_at) == (second_rep.pk, 0, T0 + minutes(DAY + 10))
    assert lead.sla_due_at == new.due_at
    assert Notification.objects.unscoped().filter(user=second_rep, kind="lead_assigned", lead=lead).count() == 1
    # Re-running the same tick changes nothing: the step happened once.
    assert beat(T0 + minutes(DAY + 5))["escalations"] == 0
    assert fresh(lead).owner_id == second_rep.pk and len(escalations(lead)) == 2


def test_steps_missed_while_beat_was_down_run_once_each_in_order(tenant, desk):
    lead, _clock = assigned_lead(tenant, desk["reps"][0])
    result = beat(T0 + minutes(2 * DAY))
    assert (result["breached"], result["alerted"], result["reassigned"]) == (1, 1, 1)
    assert escalations(lead) == [(1, ALERT), (2, REASSIGN)]
    assert fresh(lead).owner_id == desk["reps"][1].pk


def test_reassignment_with_nobody_eligible_moves_the_lead_to_unassigned(tenant, desk):
    lonely_team, _boss, (only_rep,) = sales_team(tenant, name="Solo", reps=1)
    RoutingRule.objects.unscoped().filter(tenant=tenant).update(team=lonely_team)  # a team of one
    lead, clock = assigned_lead(tenant, only_rep)
    beat(T0 + minutes(2 * DAY))
    lead = fresh(lead)
    assert lead.owner_id is None and lead.unassigned_reason
    assert fresh(clock).stop_reason == "reassigned"
    assert not SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).exists()
    assert "Unassigned" in Escalation.objects.unscoped().get(lead=lead, level=2).note


def test_a_lead_contacted_in_time_never_breaches(tenant, desk):
    owner = desk["reps"][0]
    lead, clock = assigned_lead(tenant, owner, now=timezone.now() - minutes(2))
    activity_log(lead=lead, kind="call", actor=Actor.for_user(owner), outcome="connected")
    assert beat(timezone.now() + minutes(DAY * 3))["clocks"] == 0
    assert fresh(clock).breached_at is None and escalations(lead) == []


def test_business_hours_ladders_wait_for_opening_time(tenant):
    tenant.timezone = "America/New_York"
    tenant.save()
    BusinessHours.objects.unscoped().bulk_create([
        BusinessHours(tenant=tenant, weekday=d, opens_at=dt.time(9), closes_at=dt.time(17)) for d in range(5)])
    _team, boss, (owner,) = sales_team(tenant, reps=1)
    sla_policy(tenant, minutes=60, business_hours_only=True, steps=[(1, 120, ALERT)])
    friday_4_30pm = dt.datetime(2025, 3, 7, 21, 30, tzinfo=dt.UTC)
    lead, clock = assigned_lead(tenant, owner, now=friday_4_30pm)
    assert clock.due_at == dt.datetime(2025, 3, 10, 13, 30, tzinfo=dt.UTC)  # Monday 09:30 EDT
    assert beat(dt.datetime(2025, 3, 8, 18, 0, tzinfo=dt.UTC))["clocks"] == 0  # Saturday
    beat(dt.datetime(2025, 3, 10, 13, 31, tzinfo=dt.UTC))
    assert fresh(clock).next_action_at == dt.datetime(2025, 3, 10, 15, 30, tzinfo=dt.UTC)  # 2 business hours later
    assert beat(dt.datetime(2025, 3, 10, 15, 30, tzinfo=dt.UTC))["alerted"] == 1


def test_the_sla_agent_switched_off_leaves_clocks_alone(tenant, other_tenant, desk):
    AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.SLA, enabled=False)
    sla_policy(other_tenant, minutes=5, steps=[(1, 0, ALERT)])
    lead, clock = assigned_lead(tenant, desk["reps"][0])
    _theirs, their_clock = assigned_lead(other_tenant, person(other_tenant))
    assert beat(T0 + minutes(DAY * 2))["breached"] == 1
    assert fresh(clock).breached_at is None and escalations(lead) == []
    assert fresh(their_clock).breached_at is not None


def test_tenants_are_isolated(tenant, other_tenant, desk):
    _their_team, their_boss, (their_rep,) = sales_team(other_tenant, name="Globex SDRs", reps=1)
    sla_policy(other_tenant, minutes=5, steps=[(1, 0, ALERT)])
    lead, clock = assigned_lead(tenant, desk["reps"][0])
    theirs, their_clock = assigned_lead(other_tenant, their_rep)
    sla_enforce(now=T0 + minutes(6), tenant=tenant)
    assert fresh(clock).breached_at is not None and fresh(their_clock).breached_at is None
    assert not Notification.objects.unscoped().filter(user=their_boss).exists()
    beat(T0 + minutes(6))
    assert set(Notification.objects.unscoped().filter(user=their_boss).values_list("lead_id", flat=True)) == {theirs.pk}
    assert set(Notification.objects.unscoped().filter(user=desk["manager"]).values_list("lead_id", flat=True)) == {lead.pk}


def test_a_manager_from_another_tenant_is_never_alerted(tenant, other_tenant):
    outsider = person(other_tenant, role=Role.MANAGER)
    team = TeamFactory(tenant=tenant, name="Misconfigured", manager=outsider)
    owner = person(tenant, team=team)
    admin = person(tenant, role=Role.ADMIN)
    sla_policy(tenant, minutes=5, steps=[(1, 0, ALERT)])
    lead, _clock = assigned_lead(tenant, owner)
    beat(T0 + minutes(6))
    assert not Notification.objects.unscoped().filter(user=outsider).exists()
    assert Notification.objects.unscoped().get(kind="sla_breach").user_id == admin.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_enforcement_takes_each_step_exactly_once():
    from tests.support.factories import TenantFactory

    tenant = TenantFactory(slug="race-corp")
    team, boss, reps = sales_team(tenant, reps=2)
    sla_policy(tenant, minutes=5, steps=[(1, 0, ALERT), (2, 60, ALERT)])
    leads = [assigned_lead(tenant, reps[i % 2])[0] for i in range(30)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(sla_enforce(now=T0 + minutes(120), batch_size=7))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r["clocks"] for r in results) == 30 and sum(r["errors"] for r in results) == 0, results
    assert Escalation.objects.unscoped().filter(lead__in=leads).count() == 60
    assert Notification.objects.unscoped().filter(user=boss, kind="sla_breach").count() == 60
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="sla.breached").count() == 30
    assert not SlaClock.objects.unscoped().filter(lead__in=leads, next_action_at__isnull=False).exists()


def test_a_step_already_taken_is_never_repeated_even_by_a_stale_clock(tenant, desk):
    """The (clock, level) escalation row is the backstop: even a clock rolled back to level 0 (a
    crashed run, a restored backup) does not alert the manager a second time."""
    lead, clock = assigned_lead(tenant, desk["reps"][0])
    beat(T0 + minutes(6))
    SlaClock.objects.unscoped().filter(pk=clock.pk).update(level=0, next_action_at=T0 + minutes(5))
    result = beat(T0 + minutes(7))
    assert (result["clocks"], result["alerted"], result["escalations"]) == (1, 0, 0)
    assert Notification.objects.unscoped().filter(user=desk["manager"]).count() == 1
    assert (fresh(clock).level, fresh(clock).next_action_at) == (1, T0 + minutes(5 + DAY))


def test_a_closed_lead_stops_its_clock_instead_of_escalating(tenant, desk):
    lead, clock = assigned_lead(tenant, desk["reps"][0])
    Lead.objects.unscoped().filter(pk=lead.pk).update(status="converted")
    result = beat(T0 + minutes(DAY * 2))
    assert (result["stopped"], result["escalations"]) == (1, 0)
    assert fresh(clock).stop_reason == "closed" and fresh(lead).sla_due_at is None


def test_enforcement_queries_do_not_grow_per_step_across_tenants(tenant, desk, django_assert_max_num_queries):
    for i in range(10):
        assigned_lead(tenant, desk["reps"][i % 2])
    LeadFactory(tenant=tenant)  # a lead without a clock is never looked at
    with django_assert_max_num_queries(10 * 20 + 10):
        assert beat(T0 + minutes(6))["alerted"] == 10


def test_beat_runs_the_sla_agent_every_minute_and_aging_every_15_minutes():
    from leadmgmt.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule["routing.sla_tasks.sla_enforce_task"] == 60.0
    assert schedule["routing.sla_tasks.notification_emails_task"] == 60.0
    assert schedule["routing.sla_tasks.aging_check_task"] == 900.0
    assert {"routing.sla_tasks.sla_enforce_task", "routing.sla_tasks.aging_check_task",
            "routing.sla_tasks.notification_emails_task"} <= set(app.tasks)
