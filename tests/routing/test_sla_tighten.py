"""The SLA tightens as a lead heats up: a band change moves the running first-contact clock of an owned,
open lead to the tighter policy that now matches, due at min(old due, now + the new window); audited,
idempotent, never looser, closed and worked leads untouched. Real PostgreSQL, the real outbox dispatch."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, team_get_or_create
from leads.models import Lead, LeadStage, LeadStatus
from routing.defaults import routing_defaults_create
from routing.models import Escalation, EscalationAction, SlaClock, SlaPolicy, Trigger
from routing.services.assign import lead_assign
from routing.services.sla_clocks import sla_clock_stop, sla_clock_tighten
from routing.services.sla_enforcement import sla_enforce
from routing.tasks import sla_clock_tighten_task
from scoring.events import score_events_dispatch
from scoring.models import ScoreEvent, ScoreEventKind
from tests.support.routing import NOW, fresh, lead, rep, running

pytestmark = pytest.mark.django_db

HOT_WEB = "Hot / MQL web and paid leads: first contact in 5 minutes"
HOT_OTHER = "Hot / MQL leads from other sources: first contact in 1 hour"
WARM = "Warm leads: first contact in 1 hour"


@pytest.fixture
def sdrs(tenant):
    """The tenant's default routing set-up and two SDRs of its default team (the round-robin's reps)."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    team = team_get_or_create(tenant=tenant, name=DEFAULT_TEAM, actor=SYSTEM)
    return rep(tenant, team, role=Role.SDR), rep(tenant, team, role=Role.SDR)


def warm_lead(tenant, owner, *, at=NOW, **fields) -> Lead:
    """A warm lead assigned to `owner` at `at`: its clock runs on the 1-hour warm policy."""
    fields = {"band": "warm", "score": 30, "stage": LeadStage.RAW, "source": "web_form", **fields}
    subject = lead(tenant, **fields)
    lead_assign(lead=subject, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE, now=at)
    return fresh(subject)


def heat(subject, band="sql", score=90) -> Lead:
    Lead.objects.unscoped().filter(pk=subject.pk).update(band=band, score=score, is_hot=score >= 75)
    return fresh(subject)


def band_event(tenant, subject, *, from_band, to_band, score):
    """What scoring does when a score crosses a band: the lead row, an outbox row, the dispatch."""
    heat(subject, to_band, score)
    ScoreEvent.objects.unscoped().create(tenant=tenant, lead=subject, kind=ScoreEventKind.BAND_CHANGED,
                                         from_band=from_band, to_band=to_band, score=score)
    score_events_dispatch(tenant=tenant)


def tightened(subject) -> int:
    return AuditEvent.objects.unscoped().filter(object_id=str(subject.pk), action="sla.tightened").count()


def test_a_warm_lead_turning_hot_gets_the_hot_clock_from_the_band_change(
        tenant, sdrs, django_capture_on_commit_callbacks):
    subject = warm_lead(tenant, sdrs[0], at=timezone.now())
    clock = running(subject)
    assert clock.policy_name == WARM

    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        band_event(tenant, subject, from_band="warm", to_band="sql", score=100)
    after = timezone.now()

    now_clock = running(subject)
    assert now_clock.pk == clock.pk, "one clock per assignment: re-timed, not a second clock"
    assert now_clock.policy_name == HOT_WEB
    assert before + timedelta(minutes=5) <= now_clock.due_at <= after + timedelta(minutes=5)
    assert now_clock.due_at < clock.due_at and now_clock.next_action_at == now_clock.due_at
    assert (now_clock.started_at, now_clock.owner_id) == (clock.started_at, sdrs[0].pk)
    assert fresh(subject).sla_due_at == now_clock.due_at and fresh(subject).owner_id == sdrs[0].pk
    event = AuditEvent.objects.unscoped().get(object_id=str(subject.pk), action="sla.tightened")
    assert (event.actor_name, event.metadata["from_policy"], event.metadata["policy"]) == ("SLA Agent", WARM, HOT_WEB)


def test_a_new_leads_first_score_sends_no_tighten_task(tenant, sdrs, django_capture_on_commit_callbacks):
    """The capture pipeline scores a new lead before routing it, so its clock started on the policy of its
    first band: the first score's band event (from no band) sends no task (a burst would send one per lead)."""
    subject = warm_lead(tenant, sdrs[0], at=timezone.now())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        band_event(tenant, subject, from_band="", to_band="sql", score=100)
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        band_event(tenant, subject, from_band="warm", to_band="sql", score=100)
    assert any("lead_band_changed_sla" in getattr(c, "__qualname__", "") for c in callbacks)


def test_a_second_dispatch_or_task_run_changes_nothing(tenant, sdrs, django_capture_on_commit_callbacks):
    subject = warm_lead(tenant, sdrs[0], at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        band_event(tenant, subject, from_band="warm", to_band="sal", score=70)
    first = running(subject)
    with django_capture_on_commit_callbacks(execute=True):
        band_event(tenant, subject, from_band="sal", to_band="sql", score=95)  # the same policy matches
    assert sla_clock_tighten_task.delay(tenant_id=tenant.pk, lead_id=str(subject.pk)).get() is None

    again = running(subject)
    assert (again.pk, again.policy_id, again.due_at, again.next_action_at) == (
        first.pk, first.policy_id, first.due_at, first.next_action_at)
    assert tightened(subject) == 1


def test_the_new_deadline_is_never_later_than_the_old_one(tenant, sdrs):
    subject = warm_lead(tenant, sdrs[0])  # due NOW + 60 min
    clock = sla_clock_tighten(lead=heat(subject), now=NOW + timedelta(minutes=58))

    assert clock.policy_name == HOT_WEB
    assert clock.due_at == NOW + timedelta(minutes=60), "min(old due, now + 5 min): the old due"
    assert fresh(subject).sla_due_at == NOW + timedelta(minutes=60)


def test_hot_leads_from_other_sources_move_from_the_4_hour_catch_all_to_1_hour(tenant, sdrs):
    subject = warm_lead(tenant, sdrs[0], source="referral", band="cold", score=10)
    assert running(subject).policy_name == "Every other lead: first contact in 4 hours"

    clock = sla_clock_tighten(lead=heat(subject, "mql", 50), now=NOW + timedelta(minutes=30))
    assert (clock.policy_name, clock.due_at) == (HOT_OTHER, NOW + timedelta(minutes=90))


def test_a_cooler_band_never_loosens_the_clock(tenant, sdrs):
    subject = warm_lead(tenant, sdrs[0], band="sql", score=90)
    clock = running(subject)
    assert clock.policy_name == HOT_WEB

    assert sla_clock_tighten(lead=heat(subject, "warm", 30), now=NOW + timedelta(minutes=1)) is None
    assert (running(subject).policy_name, running(subject).due_at) == (HOT_WEB, clock.due_at)
    assert tightened(subject) == 0


@pytest.mark.parametrize("status", [LeadStatus.CONVERTED, LeadStatus.REJECTED, LeadStatus.UNQUALIFIED])
def test_closed_leads_are_left_alone(tenant, sdrs, status, django_capture_on_commit_callbacks):
    subject = warm_lead(tenant, sdrs[0], at=timezone.now())
    clock = running(subject)
    Lead.objects.unscoped().filter(pk=subject.pk).update(status=status)

    with django_capture_on_commit_callbacks(execute=True):
        band_event(tenant, subject, from_band="warm", to_band="sql", score=95)

    after = SlaClock.objects.unscoped().get(pk=clock.pk)
    assert (after.policy_id, after.due_at) == (clock.policy_id, clock.due_at)
    assert tightened(subject) == 0


def test_a_lead_already_contacted_or_unassigned_has_no_clock_to_tighten(tenant, sdrs, django_capture_on_commit_callbacks):
    contacted = warm_lead(tenant, sdrs[0], at=timezone.now())
    sla_clock_stop(lead=contacted, reason="first_contact", kind="first_contact")
    unassigned = lead(tenant, band="warm", score=30)

    with django_capture_on_commit_callbacks(execute=True):
        band_event(tenant, contacted, from_band="warm", to_band="sql", score=95)
        band_event(tenant, unassigned, from_band="warm", to_band="sql", score=95)

    assert running(contacted) is None
    assert tightened(contacted) == tightened(unassigned) == 0


def test_an_aes_acceptance_clock_is_not_a_first_contact_clock(tenant, sdrs):
    ae = rep(tenant, role=Role.AE)
    subject = warm_lead(tenant, ae, stage=LeadStage.SQL, band="warm", score=30)
    clock = running(subject)
    assert clock.kind == "acceptance"

    assert sla_clock_tighten(lead=heat(subject), now=NOW + timedelta(minutes=5)) is None
    assert running(subject).due_at == clock.due_at


def test_a_tenants_own_looser_policy_is_never_switched_to(tenant, sdrs):
    SlaPolicy.objects.unscoped().filter(tenant=tenant, name=HOT_WEB).update(minutes=120)
    subject = warm_lead(tenant, sdrs[0])

    assert sla_clock_tighten(lead=heat(subject), now=NOW + timedelta(minutes=1)) is None
    assert running(subject).policy_name == WARM


def test_a_breached_clock_keeps_its_breach_and_takes_the_hot_ladders_next_step_once(tenant, sdrs):
    subject = warm_lead(tenant, sdrs[0])
    sla_enforce(now=NOW + timedelta(minutes=61), tenant=tenant)  # warm: breached and manager alerted
    clock = running(subject)
    assert (clock.breached_at, clock.level) == (NOW + timedelta(minutes=60), 1)

    tightened_clock = sla_clock_tighten(lead=heat(subject), now=NOW + timedelta(minutes=70))
    assert tightened_clock.due_at == NOW + timedelta(minutes=60), "still the old (past) deadline"
    assert (tightened_clock.breached_at, tightened_clock.level) == (clock.breached_at, 1)

    sla_enforce(now=NOW + timedelta(minutes=71), tenant=tenant)
    assert Escalation.objects.unscoped().filter(clock_id=clock.pk).count() == 1, "no second alert"
    assert running(subject).next_action_at == NOW + timedelta(minutes=85), "the hot ladder: reassign 25 min after due"

    sla_enforce(now=NOW + timedelta(minutes=86), tenant=tenant)
    step = Escalation.objects.unscoped().get(clock_id=clock.pk, level=2)
    assert step.action == EscalationAction.REASSIGN
    assert fresh(subject).owner_id == sdrs[1].pk


def test_another_tenants_lead_is_not_reachable_through_the_task(tenant, other_tenant, sdrs):
    subject = warm_lead(tenant, sdrs[0])
    heat(subject)
    assert sla_clock_tighten_task.delay(tenant_id=other_tenant.pk, lead_id=str(subject.pk)).get() is None
    assert running(subject).policy_name == WARM
