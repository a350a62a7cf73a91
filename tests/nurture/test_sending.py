"""The Nurture Agent sends due steps over real SMTP (aiosmtpd): headers, links, footer, at most once,
rate limits, quiet hours, conditions, pauses, and an unreachable server."""
from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlparse

import pytest
from django.db import connection

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Agent, AgentSetting
from leads.models import LeadStatus
from nurture import tokens
from nurture.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Message,
    MessageStatus,
    PauseReason,
    StepCondition,
    Suppression,
    WhenFalse,
)
from nurture.services.sending import (
    STALE_AFTER,
    messages_claim,
    nurture_agent_run,
    nurture_tenant_run,
)
from tests.support.factories import MembershipFactory
from tests.support.nurture import (
    NurtureLeadFactory,
    NurtureSettingsFactory,
    StepFactory,
    sequence_with_steps,
)

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def fresh(obj):
    return type(obj).objects.unscoped().get(pk=obj.pk)


def run(tenant, now=T0):
    return nurture_tenant_run(tenant=tenant, now=now)


@pytest.fixture
def sequence(tenant, nurture_settings):
    return sequence_with_steps(tenant=tenant, steps=3, name="New Lead", delays_days=(0, 3, 7))


def test_first_step_goes_out_with_merge_fields_footer_tracking_and_one_click_unsubscribe(tenant, sequence,
                                                                                           smtp_server):
    lead = NurtureLeadFactory(tenant=tenant, first_name="Ada", email="ada@lovelace.example", company="Analytical")
    result = run(tenant)
    assert (result.enrolled, result.claimed, result.sent, result.failed) == (1, 1, 1, 0)

    [mail] = smtp_server.messages
    assert mail["Subject"] == "Step 1 for Ada"
    assert mail["To"] == "ada@lovelace.example"
    assert mail["From"] == "Acme Marketing <marketing@acme.example>"
    assert mail["Reply-To"] == "hello@acme.example"
    message = Message.objects.unscoped().get(lead=lead)
    assert message.status == MessageStatus.SENT and message.sent_at is not None
    assert str(mail["Message-ID"]).strip() == message.smtp_message_id
    # RFC 8058: an https List-Unsubscribe URL plus the one-click POST header.
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(https://leads\.acme\.test/n/u/[^>]+/)>", str(mail["List-Unsubscribe"]).strip()).group(1)
    token = urlparse(unsubscribe).path.split("/")[3]
    assert tokens.unsubscribe_token_read(token) == message.pk

    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert text.startswith("Hi Ada,")
    # Every link is a signed click-redirect carrying the original URL; the raw URL is not linked directly.
    clicks = re.findall(r"https://leads\.acme\.test/n/c/([^/\s\"]+)/", text)
    assert len(clicks) == 1
    target = tokens.click_token_read(clicks[0])
    assert (target.message_id, target.url) == (message.pk, "https://acme.example/guide")
    assert 'href="https://acme.example/guide"' not in html
    assert re.search(r'<img src="https://leads\.acme\.test/n/o/[^"]+\.gif"', html)
    # Footer: the tenant's name and postal address, and the unsubscribe link, in both parts.
    for part in (text, html):
        assert "Acme Corp" in part and "1 Market Street, Springfield 12345" in part
        assert unsubscribe in part

    enrollment = Enrollment.objects.unscoped().get(lead=lead)
    assert (enrollment.next_position, enrollment.next_due_at, enrollment.messages_sent) == (2, T0 + timedelta(days=3), 1)
    sent = AuditEvent.objects.unscoped().get(action="nurture.email_sent", object_id=str(lead.pk))
    assert sent.actor_name == "Nurture Agent" and sent.metadata["subject"] == "Step 1 for Ada"


def test_each_step_waits_for_its_delay_and_the_sequence_completes(tenant, sequence, smtp_server):
    lead = NurtureLeadFactory(tenant=tenant)
    run(tenant)
    run(tenant, T0 + timedelta(days=2, hours=23))
    assert len(smtp_server.messages) == 1
    run(tenant, T0 + timedelta(days=3))
    run(tenant, T0 + timedelta(days=9, hours=23))
    assert len(smtp_server.messages) == 2
    run(tenant, T0 + timedelta(days=10))
    assert [m["Subject"] for m in smtp_server.messages] == [f"Step {n} for {lead.first_name}" for n in (1, 2, 3)]
    enrollment = Enrollment.objects.unscoped().get(lead=lead)
    assert enrollment.status == EnrollmentStatus.COMPLETED and enrollment.next_due_at is None
    run(tenant, T0 + timedelta(days=30))
    assert len(smtp_server.messages) == 3
    # Completed: never auto-enrolled in the same sequence again.
    assert Enrollment.objects.unscoped().filter(lead=lead).count() == 1


def test_running_twice_or_concurrently_sends_each_step_once(tenant, sequence, smtp_server, transactional_db):
    leads = [NurtureLeadFactory(tenant=tenant) for _ in range(6)]
    run(tenant)
    run(tenant)  # a duplicate execution of the same minute
    assert len(smtp_server.messages) == 6

    # Two agents at the same instant (beat overlap, a task delivered twice) for the next step.
    later = T0 + timedelta(days=3)
    barrier = threading.Barrier(2)
    errors = []

    def agent():
        try:
            barrier.wait()
            nurture_agent_run(now=later, tenant_ids=[tenant.pk])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=agent) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(smtp_server.messages) == 12
    per_lead = sorted(len(smtp_server.to(lead.email)) for lead in leads)
    assert per_lead == [2] * 6
    assert Message.objects.unscoped().filter(tenant=tenant).count() == 12


def test_the_tenant_rate_limit_spreads_sends_over_minutes(tenant, sequence, smtp_server):
    NurtureSettingsFactory(tenant=tenant).__class__.objects.unscoped().filter(tenant=tenant).update(max_per_minute=3)
    for _ in range(5):
        NurtureLeadFactory(tenant=tenant)
    assert run(tenant).sent == 3
    assert run(tenant, T0 + timedelta(seconds=30)).sent == 0
    assert run(tenant, T0 + timedelta(seconds=61)).sent == 2
    assert len(smtp_server.messages) == 5


def test_quiet_hours_in_the_leads_time_zone_defer_the_step_to_their_end(tenant, sequence, smtp_server):
    from nurture.models import NurtureSettings

    NurtureSettings.objects.unscoped().filter(tenant=tenant).update(quiet_hours_start=time(20, 0),
                                                                    quiet_hours_end=time(8, 0))
    new_york = NurtureLeadFactory(tenant=tenant, attributes={"timezone": "America/New_York"})
    berlin = NurtureLeadFactory(tenant=tenant, phone="+4930901820")  # a Berlin number: Europe/Berlin
    at = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 02:00 in New York, 08:00 in Berlin
    result = run(tenant, at)
    assert (result.sent, result.deferred) == (1, 1)
    assert smtp_server.to(berlin.email) and not smtp_server.to(new_york.email)
    deferred = Enrollment.objects.unscoped().get(lead=new_york)
    assert deferred.next_due_at == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # 08:00 New York
    run(tenant, datetime(2026, 12, 2, 13, 0, tzinfo=UTC))
    assert len(smtp_server.to(new_york.email)) == 1


def test_a_condition_skips_or_chooses_the_next_step(tenant, nurture_settings, smtp_server):
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Branching")
    StepFactory(sequence=sequence, tenant=tenant, position=2, delay_days=2, subject="Opened: more for you",
                condition=StepCondition.OPENED_PREVIOUS, when_false=WhenFalse.SKIP)
    StepFactory(sequence=sequence, tenant=tenant, position=3, delay_days=0, subject="Did you miss this?")
    opener = NurtureLeadFactory(tenant=tenant)
    ignorer = NurtureLeadFactory(tenant=tenant)
    run(tenant)
    Message.objects.unscoped().filter(lead=opener).update(opened_at=T0 + timedelta(hours=1), open_count=1)
    run(tenant, T0 + timedelta(days=2))
    assert [m["Subject"] for m in smtp_server.to(opener.email)][1] == "Opened: more for you"
    assert [m["Subject"] for m in smtp_server.to(ignorer.email)][1] == "Did you miss this?"
    assert Enrollment.objects.unscoped().get(lead=ignorer).status == EnrollmentStatus.COMPLETED


def test_a_false_condition_can_end_the_sequence(tenant, nurture_settings, smtp_server):
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Score gate", ready_score=None)
    StepFactory(sequence=sequence, tenant=tenant, position=2, delay_days=1, condition=StepCondition.SCORE_AT_LEAST,
                condition_score=35, when_false=WhenFalse.EXIT)
    low = NurtureLeadFactory(tenant=tenant, score=20)
    high = NurtureLeadFactory(tenant=tenant, score=36)
    run(tenant)
    run(tenant, T0 + timedelta(days=1))
    assert len(smtp_server.to(high.email)) == 2 and len(smtp_server.to(low.email)) == 1
    ended = Enrollment.objects.unscoped().get(lead=low)
    assert (ended.status, ended.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.CONDITION)
    assert AuditEvent.objects.unscoped().filter(action="nurture.exited", object_id=str(low.pk),
                                                metadata__reason="condition").exists()


def test_only_consenting_unsuppressed_leads_are_mailed(tenant, sequence, smtp_server):
    NurtureLeadFactory(tenant=tenant, marketing_consent=False)
    suppressed = NurtureLeadFactory(tenant=tenant, email="Gone@Example.com")
    Suppression.objects.unscoped().create(tenant=tenant, email="gone@example.com", reason="unsubscribed")
    withdrawn = NurtureLeadFactory(tenant=tenant)
    run(tenant)
    assert [m["To"] for m in smtp_server.messages] == [withdrawn.email]
    assert not Enrollment.objects.unscoped().filter(lead=suppressed).exists()
    type(withdrawn).objects.unscoped().filter(pk=withdrawn.pk).update(marketing_consent=False)
    run(tenant, T0 + timedelta(days=3))
    assert len(smtp_server.messages) == 1
    assert Enrollment.objects.unscoped().get(lead=withdrawn).exit_reason == ExitReason.NO_CONSENT


def test_a_lead_a_rep_is_working_pauses_then_resumes(tenant, sequence, smtp_server):
    rep = MembershipFactory(tenant=tenant).user
    lead = NurtureLeadFactory(tenant=tenant)
    run(tenant)
    type(lead).objects.unscoped().filter(pk=lead.pk).update(
        owner=rep, status=LeadStatus.CONTACTED, last_activity_at=T0 + timedelta(days=1))
    result = run(tenant, T0 + timedelta(days=3))
    assert (result.paused, result.sent) == (1, 0)
    enrollment = Enrollment.objects.unscoped().get(lead=lead)
    assert (enrollment.status, enrollment.paused_reason) == (EnrollmentStatus.PAUSED, PauseReason.REP_WORKING)
    assert run(tenant, T0 + timedelta(days=10)).sent == 0  # contacted 9 days ago: still within 14
    result = run(tenant, T0 + timedelta(days=15, minutes=1))
    assert (result.resumed, result.sent) == (1, 1)
    assert [a for a in AuditEvent.objects.unscoped().filter(object_id=str(lead.pk), action__startswith="nurture.")
            .order_by("at", "id").values_list("action", flat=True)] == [
        "nurture.enrolled", "nurture.email_sent", "nurture.paused", "nurture.resumed", "nurture.email_sent"]


def test_an_unreachable_smtp_server_loses_nothing_and_sends_once_it_is_back(tenant, sequence, smtp_server,
                                                                           smtp_port):
    lead = NurtureLeadFactory(tenant=tenant)
    smtp_server.stop()
    result = run(tenant)
    assert (result.claimed, result.sent, result.released) == (1, 0, 1)
    assert not Message.objects.unscoped().filter(lead=lead).exists()
    enrollment = Enrollment.objects.unscoped().get(lead=lead)
    assert (enrollment.next_position, enrollment.messages_sent) == (1, 0)
    smtp_server.start(smtp_port)
    assert run(tenant, T0 + timedelta(minutes=1)).sent == 1
    assert len(smtp_server.messages) == 1


def test_a_message_left_sending_by_a_dead_worker_is_failed_not_resent(tenant, sequence, smtp_server):
    from nurture.models import NurtureSettings

    lead = NurtureLeadFactory(tenant=tenant)
    run(tenant, T0 - timedelta(hours=1))
    assert len(smtp_server.messages) == 1
    # The worker claims step 2 and dies before handing it to SMTP.
    nurture = NurtureSettings.objects.unscoped().get(tenant=tenant)
    later = T0 + timedelta(days=3)
    claim = messages_claim(tenant=tenant, nurture=nurture, now=later)
    assert len(claim.message_ids) == 1
    result = run(tenant, later + STALE_AFTER + timedelta(minutes=1))
    assert (result.stale, result.sent) == (1, 0)
    message = Message.objects.unscoped().get(pk=claim.message_ids[0])
    assert message.status == MessageStatus.FAILED and "not retried" in message.error
    assert len(smtp_server.messages) == 1
    assert Enrollment.objects.unscoped().get(lead=lead).next_position == 3


def test_the_agent_off_switch_and_a_missing_postal_address_stop_sending(tenant, other_tenant, sequence, smtp_server):
    NurtureLeadFactory(tenant=tenant)
    other_sequence = sequence_with_steps(tenant=other_tenant, steps=1, name="Globex")
    NurtureLeadFactory(tenant=other_tenant)  # other tenant: no nurture settings, so no postal address
    AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.NURTURE, enabled=False)
    runs = nurture_agent_run(now=T0)
    assert [r.tenant_id for r in runs] == [other_tenant.pk]
    assert runs[0].skipped.startswith("No postal address") and runs[0].enrolled == 1
    assert smtp_server.messages == []
    assert not Enrollment.objects.unscoped().filter(tenant=tenant).exists()
    assert other_sequence.tenant_id == other_tenant.pk


def test_tenants_only_mail_their_own_leads_with_their_own_sequences(tenant, other_tenant, sequence, smtp_server):
    NurtureSettingsFactory(tenant=other_tenant, postal_address="Globex, 2 Other Road", from_email="news@globex.example",
                           from_name="Globex")
    sequence_with_steps(tenant=other_tenant, steps=1, name="Globex welcome")
    ours = NurtureLeadFactory(tenant=tenant)
    theirs = NurtureLeadFactory(tenant=other_tenant)
    nurture_agent_run(now=T0)
    [ours_mail] = smtp_server.to(ours.email)
    [theirs_mail] = smtp_server.to(theirs.email)
    assert "Acme Corp" in ours_mail.get_body(("plain",)).get_content()
    assert "Globex, 2 Other Road" in theirs_mail.get_body(("plain",)).get_content()
    assert theirs_mail["From"] == "Globex <news@globex.example>"
    assert Enrollment.objects.unscoped().get(lead=theirs).sequence.tenant_id == other_tenant.pk
    assert Enrollment.objects.unscoped().get(lead=ours).sequence_id == sequence.pk
