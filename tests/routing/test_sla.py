"""SLA policies and clocks: which policy applies, start at assignment, stop at first contact or acceptance,
business hours; contact attempts and recycling to nurture from logged activities."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leads.models import Activity, Lead, LeadStatus
from routing.models import BusinessHours, RoutingSettings, SlaClock, SlaKind
from routing.services.aging import lead_recycle
from routing.services.sla_clocks import SLA_AGENT, sla_clock_stop, sla_policy_for
from tests.support.factories import LeadFactory
from tests.support.sla import T0, assign, assigned_lead, fresh, minutes, person, sla_policy
from workspace.services.activities import activity_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep(tenant):
    return person(tenant)


@pytest.fixture
def seed_policies(tenant):
    """The seed defaults, in the order a tenant gets them."""
    return {
        "accept": sla_policy(tenant, position=1, name="AE accepts an SQL", kind=SlaKind.ACCEPTANCE,
                             stages=["sql"], minutes=24 * 60),
        "event": sla_policy(tenant, position=2, name="Trade show", sources=["event"], minutes=24 * 60),
        "hot": sla_policy(tenant, position=3, name="Hot/MQL web", bands=["mql", "sal", "sql"], minutes=5),
        "warm": sla_policy(tenant, position=4, name="Warm", bands=["warm"], minutes=60),
    }


def test_the_first_matching_active_policy_applies(tenant, seed_policies):
    def policy(**fields):
        return sla_policy_for(lead=LeadFactory.build(tenant=tenant, **fields))

    assert policy(source="web_form", band="mql").name == "Hot/MQL web"
    assert policy(source="web_form", band="warm").name == "Warm"
    assert policy(source="event", band="mql").name == "Trade show"  # position 2 before 3
    assert policy(source="Event", band="cold").name == "Trade show"  # case does not matter
    assert policy(source="web_form", band="cold") is None
    assert policy(source="web_form", band="sql", stage="sql").name == "AE accepts an SQL"
    # An acceptance SLA is over once the SQL is accepted; an MQL never gets one.
    assert policy(source="web_form", band="sql", stage="sql", accepted_at=T0).name == "Hot/MQL web"
    assert policy(source="web_form", band="sql", stage="mql").name == "Hot/MQL web"
    seed_policies["event"].is_active = False
    seed_policies["event"].save()
    assert policy(source="event", band="cold") is None


def test_assignment_starts_a_clock_and_mirrors_its_deadline_on_the_lead(tenant, rep, seed_policies):
    lead, clock = assigned_lead(tenant, rep, band="mql")
    assert (clock.owner_id, clock.kind, clock.policy_name) == (rep.pk, "first_contact", "Hot/MQL web")
    assert (clock.started_at, clock.due_at, clock.next_action_at) == (T0, T0 + minutes(5), T0 + minutes(5))
    assert fresh(lead).sla_due_at == T0 + minutes(5)
    event = AuditEvent.objects.unscoped().get(action="sla.started", object_id=str(lead.pk))
    assert event.actor_name == "SLA Agent" and event.metadata["minutes"] == 5


def test_reassignment_stops_the_running_clock_and_starts_a_new_one(tenant, rep, seed_policies):
    other = person(tenant)
    lead, first = assign_then = assigned_lead(tenant, rep, band="warm")
    second = assign(lead, other, now=T0 + minutes(30))
    first = fresh(assign_then[1])
    assert (first.stopped_at, first.stop_reason, first.next_action_at) == (T0 + minutes(30), "reassigned", None)
    assert (second.owner_id, second.due_at) == (other.pk, T0 + minutes(90))
    assert SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).count() == 1
    assert fresh(lead).sla_due_at == T0 + minutes(90)


def test_no_clock_without_an_owner_a_matching_policy_or_an_open_lead(tenant, rep, seed_policies):
    lead, clock = assigned_lead(tenant, rep, band="mql")
    assert assign(lead, None, now=T0 + minutes(1)) is None  # moved to Unassigned
    assert fresh(clock).stop_reason == "reassigned" and fresh(lead).sla_due_at is None
    cold, clock = assigned_lead(tenant, rep, band="cold")
    assert clock is None and fresh(cold).sla_due_at is None
    converted, clock = assigned_lead(tenant, rep, band="mql", status=LeadStatus.CONVERTED)
    assert clock is None


def test_business_hours_policies_count_only_opening_hours(tenant, rep):
    tenant.timezone = "America/New_York"
    tenant.save()
    BusinessHours.objects.unscoped().bulk_create([
        BusinessHours(tenant=tenant, weekday=d, opens_at=dt.time(9), closes_at=dt.time(17)) for d in range(5)])
    sla_policy(tenant, minutes=90, business_hours_only=True)
    friday_4pm_ny = dt.datetime(2025, 3, 7, 21, 0, tzinfo=dt.UTC)
    _lead, clock = assigned_lead(tenant, rep, now=friday_4pm_ny)
    assert clock.due_at == dt.datetime(2025, 3, 10, 13, 30, tzinfo=dt.UTC)  # Monday 9:30 EDT


def test_the_first_call_stops_the_clock_and_marks_the_lead_contacted(tenant, rep, seed_policies):
    lead, clock = assigned_lead(tenant, rep, band="mql", now=timezone.now() - minutes(3))
    activity_log(lead=lead, kind="note", actor=Actor.for_user(rep), body="Looked them up")
    assert fresh(clock).stopped_at is None, "a note is not contact"
    activity_log(lead=lead, kind="call", actor=Actor.for_user(rep), outcome="connected")
    clock, lead = fresh(clock), fresh(lead)
    assert clock.stop_reason == "first_contact" and clock.stopped_at is not None and clock.breached_at is None
    assert lead.status == LeadStatus.CONTACTED and lead.first_contacted_at is not None and lead.sla_due_at is None
    stopped = AuditEvent.objects.unscoped().get(action="sla.stopped", object_id=str(lead.pk))
    assert stopped.actor_name == rep.get_username() and stopped.metadata["reason"] == "first_contact"
    first = lead.first_contacted_at
    activity_log(lead=lead, kind="email", actor=Actor.for_user(rep), subject="Follow-up")
    assert fresh(lead).first_contacted_at == first


def test_a_call_does_not_stop_an_acceptance_clock_but_acceptance_does(tenant, seed_policies):
    ae = person(tenant, role="ae")
    lead, clock = assigned_lead(tenant, ae, band="sql", stage="sql", now=timezone.now() - minutes(3))
    assert clock.kind == SlaKind.ACCEPTANCE
    activity_log(lead=lead, kind="call", actor=Actor.for_user(ae), outcome="connected")
    assert fresh(clock).stopped_at is None
    assert sla_clock_stop(lead=lead, reason="accepted").stop_reason == "accepted"
    assert sla_clock_stop(lead=lead, reason="accepted") is None  # idempotent
    assert fresh(lead).sla_due_at is None
    assert AuditEvent.objects.unscoped().filter(action="sla.stopped", object_id=str(lead.pk)).count() == 1


def test_an_api_key_or_agent_activity_is_not_a_first_contact(tenant, rep, seed_policies):
    lead, clock = assigned_lead(tenant, rep, band="mql", now=timezone.now() - minutes(1))
    activity_log(lead=lead, kind="email", actor=SLA_AGENT, subject="Automated", outcome="sent")
    assert fresh(clock).stopped_at is None and fresh(lead).first_contacted_at is None


def _calls(lead, rep, outcomes, start):
    for i, outcome in enumerate(outcomes):
        activity_log(lead=lead, kind="call", actor=Actor.for_user(rep), outcome=outcome,
                     occurred_at=start + minutes(i))


def test_unanswered_attempts_recycle_the_lead_to_nurture(tenant, rep, seed_policies):
    RoutingSettings.objects.unscoped().create(tenant=tenant, recycle_after_attempts=3)
    lead, clock = assigned_lead(tenant, rep, band="mql", stage="mql", now=timezone.now() - minutes(60))
    start = timezone.now() - minutes(30)
    _calls(lead, rep, ["no answer", "Voicemail"], start)
    _calls(lead, rep, ["no answer", "Voicemail"], start)  # the same two calls retried: they count once
    assert fresh(lead).contact_attempts == 2 and fresh(lead).status == LeadStatus.CONTACTED
    activity_log(lead=lead, kind="email", actor=Actor.for_user(rep), outcome="bounced", occurred_at=start + minutes(5))
    lead = fresh(lead)
    assert (lead.status, lead.contact_attempts, lead.owner_id, lead.stage) == (LeadStatus.RECYCLED, 3, rep.pk, "mql")
    event = AuditEvent.objects.unscoped().get(action="lead.recycled", object_id=str(lead.pk))
    assert event.actor_name == "SLA Agent" and event.metadata["reason"] == "3 contact attempts without a response"
    assert event.changes["status"] == ["contacted", "recycled"]
    assert Activity.objects.unscoped().filter(lead=lead).count() == 3


def test_an_answered_call_resets_the_unanswered_count(tenant, rep, seed_policies):
    RoutingSettings.objects.unscoped().create(tenant=tenant, recycle_after_attempts=3)
    lead, _clock = assigned_lead(tenant, rep, band="mql")
    start = timezone.now() - minutes(30)
    _calls(lead, rep, ["no_answer", "no_answer", "connected", "no_answer", "no_answer"], start)
    lead = fresh(lead)
    assert (lead.contact_attempts, lead.status) == (2, LeadStatus.CONTACTED)


def test_recycling_uses_the_default_threshold_and_zero_means_never(tenant, rep):
    lead = LeadFactory(tenant=tenant)
    _calls(lead, rep, ["no_answer"] * 6, timezone.now() - minutes(30))
    assert fresh(lead).status == LeadStatus.RECYCLED  # RoutingSettings default: 6
    RoutingSettings.objects.unscoped().create(tenant=tenant, recycle_after_attempts=0)
    other = LeadFactory(tenant=tenant)
    _calls(other, rep, ["no_answer"] * 8, timezone.now() - minutes(30))
    assert fresh(other).status == LeadStatus.CONTACTED and fresh(other).contact_attempts == 8


def test_lead_recycle_stops_the_clock_is_idempotent_and_refuses_closed_leads(tenant, rep, seed_policies):
    lead, clock = assigned_lead(tenant, rep, band="mql")
    recycled = lead_recycle(lead=lead, actor=Actor.for_user(rep), reason="Not now")
    assert recycled.status == LeadStatus.RECYCLED and fresh(clock).stop_reason == "recycled"
    assert lead_recycle(lead=lead, actor=Actor.for_user(rep), reason="again").status == LeadStatus.RECYCLED
    assert AuditEvent.objects.unscoped().filter(action="lead.recycled", object_id=str(lead.pk)).count() == 1
    converted = LeadFactory(tenant=tenant, status=LeadStatus.CONVERTED)
    with pytest.raises(ValidationError) as err:
        lead_recycle(lead=converted, actor=Actor.for_user(rep), reason="x")
    assert "status" in err.value.message_dict
    assert Lead.objects.unscoped().get(pk=converted.pk).status == LeadStatus.CONVERTED


def test_stopping_one_tenants_clock_leaves_another_tenants_clocks_alone(tenant, other_tenant, rep, seed_policies):
    sla_policy(other_tenant, minutes=5)
    lead, clock = assigned_lead(tenant, rep, band="mql")
    theirs, their_clock = assigned_lead(other_tenant, person(other_tenant))
    sla_clock_stop(lead=lead, reason="closed")
    assert fresh(clock).stopped_at is not None and fresh(their_clock).stopped_at is None
    assert fresh(theirs).sla_due_at == T0 + minutes(5)


def test_the_ae_accepting_the_sql_stops_the_acceptance_clock(tenant, seed_policies):
    from routing.services.sla_enforcement import sla_enforce
    from workspace.services.lifecycle import lead_accept

    ae = person(tenant, role="ae")
    lead, clock = assigned_lead(tenant, ae, band="sql", stage="sql", now=timezone.now() - minutes(60))
    assert (clock.kind, clock.due_at - clock.started_at) == (SlaKind.ACCEPTANCE, dt.timedelta(hours=24))
    lead_accept(lead=fresh(lead), actor=Actor.for_user(ae))
    clock = fresh(clock)
    assert (clock.stop_reason, clock.breached_at) == ("accepted", None) and fresh(lead).sla_due_at is None
    assert sla_enforce(now=timezone.now() + dt.timedelta(days=3))["clocks"] == 0


def test_sla_clocks_never_import_assignment_or_enforcement():
    """`assign` starts clocks and enforcement reassigns through `assign`: the clocks importing either
    back would make an import cycle."""
    import ast
    import inspect

    from routing.services import sla_clocks

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(sla_clocks))):
        if isinstance(node, ast.ImportFrom):
            imported |= {node.module or ""} | {f"{node.module or ''}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not {name for name in imported for banned in ("assign", "sla_enforcement") if banned in name.split(".")}
