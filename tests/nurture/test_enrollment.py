"""Enrolment by audience and by hand, exits with their reasons on the timeline, and readiness → routing."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import Activity, Lead, LeadStage, LeadStatus, Opportunity, Signal
from nurture.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Message,
    NurtureSettings,
    SequenceKind,
)
from nurture.services.enrollment import (
    enrollment_stop,
    enrollments_auto_enroll,
    enrollments_exit_sweep,
    lead_enroll,
    lead_readiness_check,
)
from nurture.services.sending import nurture_tenant_run
from routing.models import Assignment, Trigger
from scoring.events import lead_band_changed
from tests.support.factories import LeadFactory, UserFactory, api_key_for
from tests.support.nurture import NurtureLeadFactory, sequence_with_steps
from tests.support.worker import real_worker, wait_until
from workspace.selectors import lead_timeline

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def fresh(obj):
    return type(obj).objects.unscoped().get(pk=obj.pk)


def live(lead):
    return list(Enrollment.objects.unscoped().filter(lead=lead, status__in=["active", "paused"]))


def test_audience_rules_pick_the_first_matching_sequence_by_priority(tenant, nurture_settings):
    reengage = sequence_with_steps(tenant=tenant, steps=1, name="Re-engagement", kind=SequenceKind.RE_ENGAGEMENT,
                                   priority=10, audience_classes=[], audience_statuses=["recycled"])
    new_lead = sequence_with_steps(tenant=tenant, steps=1, name="New Lead", priority=40,
                                   audience_classes=["nurture", "future_fit"], audience_stages=["raw"])
    lost = sequence_with_steps(tenant=tenant, steps=1, name="Lost deal", kind=SequenceKind.LOST_DEAL, priority=20,
                               audience_classes=[], audience_opportunity_lost=True, ready_score=61)
    fresh_nurture = NurtureLeadFactory(tenant=tenant)
    future_fit = NurtureLeadFactory(tenant=tenant, lead_class="future_fit")
    not_now = NurtureLeadFactory(tenant=tenant, status=LeadStatus.RECYCLED, rejection_reason="not_now")
    lost_deal = NurtureLeadFactory(tenant=tenant, lead_class="high_fit", stage=LeadStage.MQL, score=55)
    Opportunity.objects.unscoped().create(tenant=tenant, lead=lost_deal, name="Deal", stage="lost")
    high_fit = NurtureLeadFactory(tenant=tenant, lead_class="high_fit")
    no_consent = NurtureLeadFactory(tenant=tenant, marketing_consent=False)
    already_ready = NurtureLeadFactory(tenant=tenant, score=45)
    rejected = NurtureLeadFactory(tenant=tenant, status=LeadStatus.REJECTED)

    assert enrollments_auto_enroll(tenant=tenant, now=T0) == 4
    assert enrollments_auto_enroll(tenant=tenant, now=T0) == 0  # idempotent
    by_lead = {e.lead_id: e.sequence_id for e in Enrollment.objects.unscoped().filter(tenant=tenant)}
    assert by_lead == {fresh_nurture.pk: new_lead.pk, future_fit.pk: new_lead.pk, not_now.pk: reengage.pk,
                       lost_deal.pk: lost.pk}
    for lead in (high_fit, no_consent, already_ready, rejected):
        assert lead.pk not in by_lead
    enrolled = AuditEvent.objects.unscoped().get(action="nurture.enrolled", object_id=str(not_now.pk))
    assert enrolled.actor_name == "Nurture Agent" and enrolled.metadata["sequence"] == "Re-engagement"
    enrollment = Enrollment.objects.unscoped().get(lead=fresh_nurture)
    assert (enrollment.next_position, enrollment.next_due_at, enrollment.automatic) == (1, T0, True)


def test_a_sales_rejection_as_not_now_goes_to_nurture(tenant, nurture_settings):
    from routing.defaults import routing_defaults_create
    from workspace.services.lifecycle import lead_reject

    routing_defaults_create(tenant=tenant, actor=Actor.agent("test"))
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Re-engagement", kind=SequenceKind.RE_ENGAGEMENT,
                                   audience_classes=[], audience_statuses=["recycled"])
    rep = UserFactory()
    membership_upsert(tenant=tenant, email=rep.email, role=Role.SDR)
    lead = NurtureLeadFactory(tenant=tenant, lead_class="high_fit", owner=rep)
    lead_reject(lead=lead, actor=Actor.for_user(rep), reason_code="not_now", note="Budget next year")
    assert fresh(lead).status == LeadStatus.RECYCLED
    enrollments_auto_enroll(tenant=tenant, now=T0)
    assert Enrollment.objects.unscoped().get(lead=lead).sequence_id == sequence.pk


def test_manual_enrolment_is_checked_and_one_live_sequence_per_kind(tenant, nurture_settings):
    marketer = UserFactory()
    actor = Actor.for_user(marketer)
    first = sequence_with_steps(tenant=tenant, steps=2, name="Post-demo A", kind=SequenceKind.POST_DEMO,
                                auto_enroll=False)
    second = sequence_with_steps(tenant=tenant, steps=2, name="Post-demo B", kind=SequenceKind.POST_DEMO,
                                 auto_enroll=False)
    lead = NurtureLeadFactory(tenant=tenant, lead_class="high_fit")
    enrollment = lead_enroll(lead=lead, sequence=first, actor=actor, now=T0)
    assert lead_enroll(lead=lead, sequence=first, actor=actor, now=T0).pk == enrollment.pk  # repeat: same one
    with pytest.raises(ValidationError) as exc:
        lead_enroll(lead=lead, sequence=second, actor=actor, now=T0)
    assert "already in “Post-demo A”" in exc.value.message_dict["sequence"][0]
    assert enrollment.automatic is False and enrollment.enrolled_by == marketer.get_username()

    no_consent = NurtureLeadFactory(tenant=tenant, marketing_consent=False)
    with pytest.raises(ValidationError) as exc:
        lead_enroll(lead=no_consent, sequence=first, actor=actor, now=T0)
    assert exc.value.message_dict["lead"] == ["This lead has not given marketing consent."]
    assert not Enrollment.objects.unscoped().filter(lead=no_consent).exists()

    stopped = enrollment_stop(enrollment=enrollment, actor=actor, note="Asked us to pause", now=T0)
    assert (stopped.status, stopped.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.MANUAL)
    assert enrollment_stop(enrollment=enrollment, actor=actor, now=T0).ended_at == stopped.ended_at  # idempotent
    assert lead_enroll(lead=lead, sequence=second, actor=actor, now=T0).sequence_id == second.pk


def test_exits_end_the_sequence_with_their_reason_on_the_timeline(tenant, nurture_settings):
    sequence = sequence_with_steps(tenant=tenant, steps=3, name="New Lead")
    leads = {name: NurtureLeadFactory(tenant=tenant) for name in
             ("replied", "meeting_signal", "meeting_logged", "qualified", "converted", "closed", "unsubscribed",
              "bounced", "ready", "quiet")}
    enrollments_auto_enroll(tenant=tenant, now=T0)
    later = T0 + timedelta(hours=1)
    Signal.objects.unscoped().create(tenant=tenant, lead=leads["replied"], type="email_reply", occurred_at=later)
    Signal.objects.unscoped().create(tenant=tenant, lead=leads["meeting_signal"], type="meeting_booked",
                                     occurred_at=later)
    Signal.objects.unscoped().create(tenant=tenant, lead=leads["quiet"], type="email_reply",
                                     occurred_at=T0 - timedelta(days=1))  # before enrolment: not a reply to us
    Activity.objects.unscoped().create(tenant=tenant, lead=leads["meeting_logged"], kind="meeting", occurred_at=later)
    Lead.objects.unscoped().filter(pk=leads["qualified"].pk).update(status=LeadStatus.QUALIFIED, stage=LeadStage.SQL)
    Lead.objects.unscoped().filter(pk=leads["converted"].pk).update(status=LeadStatus.CONVERTED)
    Lead.objects.unscoped().filter(pk=leads["closed"].pk).update(status=LeadStatus.UNQUALIFIED)
    from nurture.models import Suppression

    Suppression.objects.unscoped().create(tenant=tenant, email=leads["unsubscribed"].email, reason="unsubscribed")
    Suppression.objects.unscoped().create(tenant=tenant, email=leads["bounced"].email, reason="hard_bounce")
    Lead.objects.unscoped().filter(pk=leads["ready"].pk).update(score=60)

    counts = enrollments_exit_sweep(tenant=tenant, now=later)
    assert counts == {"replied": 1, "meeting_booked": 2, "qualified": 1, "converted": 1, "closed": 1,
                      "unsubscribed": 1, "bounced": 1, "ready": 1}
    assert enrollments_exit_sweep(tenant=tenant, now=later) == {}
    expected = {"replied": "replied", "meeting_signal": "meeting_booked", "meeting_logged": "meeting_booked",
                "qualified": "qualified", "converted": "converted", "closed": "closed",
                "unsubscribed": "unsubscribed", "bounced": "bounced", "ready": "ready"}
    for name, reason in expected.items():
        enrollment = Enrollment.objects.unscoped().get(lead=leads[name])
        assert (enrollment.status, enrollment.exit_reason, enrollment.next_due_at) == ("exited", reason, None)
    assert live(leads["quiet"])
    assert sequence.pk == Enrollment.objects.unscoped().get(lead=leads["quiet"]).sequence_id
    # The reason is on the lead's timeline (an audit event of the Nurture Agent).
    titles = [(e.kind, e.title, e.detail, e.actor) for e in lead_timeline(lead=fresh(leads["replied"]))]
    assert titles[:2] == [("nurture", "Left nurture: New Lead", "Replied", "Nurture Agent"),
                          ("nurture", "Enrolled in nurture: New Lead", "", "Nurture Agent")]


def test_an_exited_lead_is_never_mailed_again_by_that_sequence(tenant, nurture_settings, smtp_server):
    sequence_with_steps(tenant=tenant, steps=2, name="New Lead", delays_days=(0, 1))
    lead = NurtureLeadFactory(tenant=tenant)
    nurture_tenant_run(tenant=tenant, now=T0)
    Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="email_reply", occurred_at=T0 + timedelta(hours=2))
    nurture_tenant_run(tenant=tenant, now=T0 + timedelta(days=2))
    nurture_tenant_run(tenant=tenant, now=T0 + timedelta(days=3))
    assert len(smtp_server.messages) == 1
    assert Enrollment.objects.unscoped().filter(lead=lead).count() == 1


@pytest.fixture
def routed_tenant(db):
    """A tenant provisioned like production (scoring model, routing rules, nurture settings) with two SDRs."""
    provisioned = tenant_create(slug="acme-nurture", name="Acme Nurture", admin_email="admin@acme-nurture.example")
    tenant = provisioned.tenant
    for n in (1, 2):
        membership_upsert(tenant=tenant, email=f"sdr{n}@acme-nurture.example", role=Role.SDR, team_name=DEFAULT_TEAM)
    NurtureSettings.objects.unscoped().filter(tenant=tenant).update(  # tenant_create made the row, address blank
        postal_address="Acme Nurture, 4 Dock Road", from_email="news@acme-nurture.example", max_per_minute=1000)
    return provisioned


def test_a_recycled_lead_that_becomes_ready_leaves_nurture_and_is_routed_to_a_rep(routed_tenant):
    tenant = routed_tenant.tenant
    sequence = sequence_with_steps(tenant=tenant, steps=3, name="Re-engagement test", kind=SequenceKind.RE_ENGAGEMENT,
                                   priority=1, audience_classes=[], audience_statuses=["recycled"], ready_score=41)
    lead = NurtureLeadFactory(tenant=tenant, status=LeadStatus.RECYCLED, score=30, lead_class="nurture")
    enrollments_auto_enroll(tenant=tenant, now=T0)
    assert Enrollment.objects.unscoped().get(lead=lead, status="active").sequence_id == sequence.pk
    assert lead_readiness_check(tenant=tenant, lead_id=lead.pk) is False  # score 30: not ready

    Lead.objects.unscoped().filter(pk=lead.pk).update(score=48, band="mql")
    assert lead_readiness_check(tenant=tenant, lead_id=lead.pk) is True
    lead = fresh(lead)
    assert lead.status == LeadStatus.NEW and lead.owner is not None
    assert lead.owner.email.startswith("sdr")
    assignment = Assignment.objects.unscoped().get(lead=lead)
    assert (assignment.trigger, assignment.actor_name) == (Trigger.NURTURE_READY, "Nurture Agent")
    enrollment = Enrollment.objects.unscoped().get(lead=lead, sequence=sequence)
    assert (enrollment.status, enrollment.exit_reason, enrollment.exit_note) == ("exited", "ready", "Score 48")
    assert lead_readiness_check(tenant=tenant, lead_id=lead.pk) is False  # already out: nothing more
    assert Assignment.objects.unscoped().filter(lead=lead).count() == 1


def test_a_band_change_of_a_nurtured_lead_triggers_the_readiness_check(routed_tenant, django_capture_on_commit_callbacks):
    tenant = routed_tenant.tenant
    sequence_with_steps(tenant=tenant, steps=1, name="Warm-up", kind=SequenceKind.RE_ENGAGEMENT, priority=1,
                        audience_classes=[], audience_statuses=["recycled"], ready_score=41)
    lead = NurtureLeadFactory(tenant=tenant, status=LeadStatus.RECYCLED, score=30)
    enrollments_auto_enroll(tenant=tenant, now=T0)
    Lead.objects.unscoped().filter(pk=lead.pk).update(score=45, band="mql")
    with django_capture_on_commit_callbacks(execute=True):
        lead_band_changed.send(sender=None, tenant=tenant, lead_id=lead.pk, from_band="warm", to_band="mql", score=45)
    assert not live(lead)
    assert fresh(lead).owner_id is not None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_nurture_and_a_click_driven_rescore_routes_the_ready_lead(tmp_path, smtp_server):
    """End to end on a real worker: the agent task mails step 1; an email_click signal posted to the API is
    processed by the worker, re-scores the lead into MQL, which ends its nurture and routes it to an SDR."""
    provisioned = tenant_create(slug="acme-nw", name="Acme NW", admin_email="admin@acme-nw.example")
    tenant = provisioned.tenant
    membership_upsert(tenant=tenant, email="sdr@acme-nw.example", role=Role.SDR, team_name=DEFAULT_TEAM)
    NurtureSettings.objects.unscoped().update_or_create(
        tenant=tenant, defaults={"postal_address": "Acme NW, 3 Quay Street", "max_per_minute": 100})
    sequence_with_steps(tenant=tenant, steps=2, name="NW sequence", kind=SequenceKind.RE_ENGAGEMENT, priority=1,
                        audience_classes=[], audience_statuses=["recycled"], ready_score=41)
    lead = LeadFactory(tenant=tenant, email="nina@prospect.example", first_name="Nina", marketing_consent=True,
                       status=LeadStatus.RECYCLED)
    from scoring.services import leads_score

    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="test")
    start = fresh(lead).score
    assert start is not None and start < 41

    from nurture.tasks import nurture_agent_task

    with real_worker(tmp_path, name="test-nurture") as (_queue, process, log):
        nurture_agent_task.delay()
        wait_until(lambda: len(smtp_server.to("nina@prospect.example")) == 1, process, log, "the first nurture email")
        wait_until(lambda: Message.objects.unscoped().filter(lead=lead, status="sent").exists(), process, log,
                   "the message marked sent")
        _key, raw = api_key_for(tenant)
        client = Client()
        signals = [{"lead_id": str(lead.pk), "type": t, "occurred_at": "2026-12-01T10:00:00Z",
                    "external_id": f"{t}-{n}"} for n, t in enumerate(
                        ["demo_request", "pricing_page_view", "email_click"])]
        response = client.post("/api/v1/signals/", data=json.dumps(signals), content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 202, response.content
        wait_until(lambda: not live(lead), process, log, "the ready lead leaving nurture", timeout=60)
        wait_until(lambda: fresh(lead).owner_id is not None, process, log, "the ready lead being routed")
    enrollment = Enrollment.objects.unscoped().get(lead=lead)
    assert enrollment.exit_reason == ExitReason.READY
    assert fresh(lead).status == LeadStatus.NEW and fresh(lead).score >= 41
    assert "ERROR" not in log.read_text(errors="replace")


def test_a_lost_deal_is_nurtured_and_re_enters_the_pipeline_when_ready(routed_tenant, smtp_server):
    tenant = routed_tenant.tenant
    lost = sequence_with_steps(tenant=tenant, steps=2, name="Lost deal test", kind=SequenceKind.LOST_DEAL, priority=1,
                               audience_classes=[], audience_opportunity_lost=True, ready_score=61)
    lead = NurtureLeadFactory(tenant=tenant, status=LeadStatus.CONVERTED, stage=LeadStage.OPPORTUNITY, score=50,
                              lead_class="high_fit")
    Opportunity.objects.unscoped().create(tenant=tenant, lead=lead, name="Deal", stage="lost")
    won = NurtureLeadFactory(tenant=tenant, status=LeadStatus.CONVERTED, stage=LeadStage.CUSTOMER, score=50)
    Opportunity.objects.unscoped().create(tenant=tenant, lead=won, name="Won deal", stage="won")

    result = nurture_tenant_run(tenant=tenant, now=T0)
    assert result.sent == 1 and smtp_server.to(lead.email) and not smtp_server.to(won.email)
    assert Enrollment.objects.unscoped().get(lead=lead).sequence_id == lost.pk
    assert not Enrollment.objects.unscoped().filter(lead=won, sequence=lost).exists()

    Lead.objects.unscoped().filter(pk=lead.pk).update(score=65, band="sal")
    assert lead_readiness_check(tenant=tenant, lead_id=lead.pk) is True
    reopened = fresh(lead)
    assert reopened.status == LeadStatus.NEW and reopened.owner_id is not None
    assert AuditEvent.objects.unscoped().get(action="lead.reopened", object_id=str(lead.pk)).changes == {
        "status": ["converted", "new"]}


def test_a_lost_deal_that_is_won_after_all_leaves_as_converted(routed_tenant):
    tenant = routed_tenant.tenant
    sequence_with_steps(tenant=tenant, steps=2, name="Lost deal test", kind=SequenceKind.LOST_DEAL, priority=1,
                        audience_classes=[], audience_opportunity_lost=True, ready_score=61)
    lead = NurtureLeadFactory(tenant=tenant, status=LeadStatus.CONVERTED, stage=LeadStage.OPPORTUNITY, score=50)
    deal = Opportunity.objects.unscoped().create(tenant=tenant, lead=lead, name="Deal", stage="lost")
    enrollments_auto_enroll(tenant=tenant, now=T0)
    assert enrollments_exit_sweep(tenant=tenant, now=T0) == {}  # converted, at stage opportunity: stays in
    Opportunity.objects.unscoped().filter(pk=deal.pk).update(stage="won")
    assert enrollments_exit_sweep(tenant=tenant, now=T0 + timedelta(days=1)) == {"converted": 1}


def test_a_manual_enrolment_racing_the_minute_sweep_is_a_field_error_not_a_500(tenant, nurture_settings,
                                                                                monkeypatch):
    """The sweep enrols without the lead lock: if it wins between lead_enroll's check and its insert, the unique
    index refuses the insert and the person gets the same message as when the check sees it."""
    from nurture.services import enrollment as service

    auto = sequence_with_steps(tenant=tenant, steps=1, name="New Lead")
    manual = sequence_with_steps(tenant=tenant, steps=1, name="New Lead B", auto_enroll=False)
    lead = NurtureLeadFactory(tenant=tenant)
    real = service._live_of_kind
    calls = []

    def check_before_the_sweep(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:  # lead_enroll's check runs before the sweep's insert lands
            enrollments_auto_enroll(tenant=tenant, now=T0)
            return None
        return real(**kwargs)

    monkeypatch.setattr(service, "_live_of_kind", check_before_the_sweep)
    with pytest.raises(ValidationError) as exc:
        lead_enroll(lead=lead, sequence=manual, actor=Actor.agent("test"), now=T0)
    assert exc.value.message_dict["sequence"] == [
        "This lead is already in “New Lead”, a sequence of the same kind; stop that one first."]
    # (Here the "sweep" ran on the same connection, so the refusal rolled its insert back too.)
    assert not Enrollment.objects.unscoped().filter(lead=lead, sequence=manual).exists()
    assert auto.pk != manual.pk
