"""Erasure at the person's request (issue 15): the person is gone from every row of every table, the dashboards'
counts stay, a hashed suppression keeps them out of batch intake and nurture, the audit has no personal data,
a second erasure is harmless, and another tenant's person with the same email is untouched."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiScope, Role
from leadmgmt.webhooks.models import WebhookDeliveryAttempt
from leadmgmt.webhooks.services.delivery import webhook_deliveries_send
from leadmgmt.webhooks.services.emit import webhook_emit
from leads.erasure import ERASED_MESSAGE, email_hash, erased_emails
from leads.models import ErasedContact, Lead, LeadForm, Touch
from leads.services.capture_batch import leads_capture_batch
from nurture.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Message,
    NurtureSettings,
    Sequence,
)
from nurture.services.claiming import messages_claim
from nurture.services.enrollment import enrollments_auto_enroll, lead_mailable_problems
from routing.models import Notification
from tests.support.factories import LeadFormFactory, api_key_for
from tests.support.privacy import new_person, person_build, routed, rows_holding
from tests.support.sla import smtp_server  # noqa: F401 (fixture)
from tests.support.webhooks import endpoint_for, webhook_receiver  # noqa: F401 (fixture)
from tests.support.workspace import person as member
from workspace.dashboards import DateRange, dashboard_for
from workspace.services.privacy import ERASED, person_erase

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_actor(tenant):
    return Actor.for_user(member(tenant, role=Role.ADMIN, username="privacy-admin@acme.test"))


@pytest.fixture
def built(client, tenant, lead_form, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    routed(tenant)
    return person_build(client=client, tenant=tenant, form=lead_form, person=new_person(),
                        capture_callbacks=django_capture_on_commit_callbacks)


def test_after_erasure_no_row_of_any_table_holds_the_email_names_or_phone(tenant, built, admin_actor, smtp_server):  # noqa: F811
    before = rows_holding(built.needles)
    # The set-up reached the tables a person's data lives in (the scan would find them there).
    for table in ("leads_lead", "leads_touch", "leads_signal", "leads_activity", "audit_auditevent",
                  "nurture_message", "routing_notification", "leads_opportunity", "workspace_importjob"):
        assert table in before, (table, before)
    assert len(smtp_server.messages) >= 1

    result = person_erase(tenant=tenant, email=built.email, actor=admin_actor)

    assert rows_holding(built.needles) == {}
    assert result.leads == 1 and result.email_hash == email_hash(built.email)
    # The job title is blanked on the lead and scrubbed from the rows about it (its audit trail, its score).
    about_lead = AuditEvent.objects.unscoped().filter(object_id=str(built.lead.pk))
    assert about_lead.exists() and "Head of Ops" not in json.dumps([[e.changes, e.metadata] for e in about_lead])
    assert "Head of Ops" not in json.dumps(Lead.objects.unscoped().values().get(pk=built.lead.pk), default=str)
    lead = Lead.objects.unscoped().get(pk=built.lead.pk)
    assert lead.erased_at is not None
    assert (lead.email, lead.first_name, lead.last_name, lead.phone, lead.attributes) == ("", "", "", "", {})
    assert lead.marketing_consent is False
    assert Touch.objects.unscoped().filter(lead=lead).exclude(payload={}).count() == 0
    # The rows that were only the person's data are gone; the rows the counts need stay.
    assert Message.objects.unscoped().filter(lead=lead).count() >= 1
    assert Notification.objects.unscoped().filter(lead=lead).count() >= 1
    # The uploaded file keeps its lines (another person's row untouched); the person's line is emptied.
    from workspace.models import ImportJob

    lines = bytes(ImportJob.objects.unscoped().get(tenant=tenant).content).decode("utf-8-sig").split("\r\n")
    assert lines[1] == ";;;;" and lines[2].startswith("someone.else@other-mail.example;Sam;Else")


def test_a_webhook_answer_quoting_the_person_is_scrubbed_from_every_attempt(tenant, built, admin_actor, settings,
                                                                             webhook_receiver):  # noqa: F811
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    webhook_receiver.echo = True  # the receiver quotes the event back: the attempts' excerpts hold the person
    endpoint_for(tenant, webhook_receiver.url(), ["lead.qualified"])
    person = {"email": built.email, "name": f"{built.first_name} {built.last_name}", "phone": built.phone}
    with tenant_scope(tenant):
        with transaction.atomic():
            webhook_emit(tenant=tenant, event_type="lead.qualified", data={"lead": person}, lead_id=built.lead.pk)
        webhook_receiver.answer(500)
        webhook_deliveries_send(tenant=tenant)  # the 500
        webhook_deliveries_send(tenant=tenant, now=timezone.now() + timedelta(hours=1))  # the retry, a 200
    holding = rows_holding(built.needles)
    assert holding["webhooks_webhookdeliveryattempt"] == {"response_excerpt": 2}, holding

    person_erase(tenant=tenant, email=built.email, actor=admin_actor)

    assert rows_holding(built.needles) == {}
    assert WebhookDeliveryAttempt.objects.unscoped().filter(response_excerpt__contains=ERASED).count() == 2


def test_dashboard_counts_are_the_same_after_erasure(tenant, built, admin_actor):
    period = DateRange.default()
    now = timezone.now()
    before = dashboard_for(tenant=tenant, period=period, now=now)
    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    after = dashboard_for(tenant=tenant, period=period, now=now)
    assert after == before
    assert before.volume.total == 1 and before.funnel[0].count == 1  # the erased lead is still counted


def test_the_audit_has_one_event_with_the_hash_and_counts_and_no_personal_data(tenant, built, admin_actor):
    result = person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    [event] = AuditEvent.objects.unscoped().filter(tenant=tenant, action="person.erased")
    assert event.object_type == "person" and event.object_id == result.email_hash
    assert event.actor_user_id == admin_actor.user.pk
    assert event.metadata["counts"] == result.counts and event.metadata["leads"] == 1
    assert event.metadata["counts"]["leads_lead (anonymised)"] == 1
    text = json.dumps([event.changes, event.metadata, event.object_id]).lower()
    for needle in built.needles:
        assert needle.lower() not in text


def test_erasing_twice_is_harmless(tenant, built, admin_actor):
    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    snapshot = list(Lead.objects.unscoped().filter(tenant=tenant).order_by("pk").values())
    again = person_erase(tenant=tenant, email=built.email.upper(), actor=admin_actor)
    assert again.already_erased and again.leads == 0
    assert list(Lead.objects.unscoped().filter(tenant=tenant).order_by("pk").values()) == snapshot
    assert ErasedContact.objects.unscoped().filter(tenant=tenant).count() == 1
    assert rows_holding(built.needles) == {}


def test_batch_intake_refuses_an_erased_person_with_a_field_message(tenant, built, admin_actor):
    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    api_key, _raw = api_key_for(tenant, [ApiScope.LEADS_WRITE])
    with tenant_scope(tenant):
        result = leads_capture_batch(tenant=tenant, actor=Actor.for_api_key(api_key), api_key=api_key, items=[
            {"email": f"  {built.email.upper()} ", "first_name": built.first_name},
            {"email": "someone.else@prospect.example"},
        ])
    first, second = result.body["results"]
    assert first == {"index": 0, "status": 400, "result": "error", "errors": {"email": [ERASED_MESSAGE]}}
    assert second["result"] == "created"
    assert not Lead.objects.unscoped().filter(tenant=tenant, email=built.email).exists()
    assert rows_holding(built.needles) == {}


def test_nurture_never_mails_an_erased_person_who_posts_the_form_again(client, tenant, lead_form, built, admin_actor,
                                                                       smtp_server):  # noqa: F811
    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    sent_before = len(smtp_server.messages)
    # The public form: a new post is a new act of the person, accepted (README: Privacy requests).
    from tests.support.intake import post_json

    response = post_json(client, {"email": built.email, "first_name": built.first_name, "marketing_consent": True},
                         form=lead_form)
    assert response.status_code == 201
    lead = Lead.objects.unscoped().get(tenant=tenant, email=built.email)
    assert erased_emails(tenant=tenant, emails=[lead.email]) == {lead.email}
    # Audience-ready (the set-up's sequence takes warm nurture leads), yet the minute sweep does not enrol it.
    Lead.objects.unscoped().filter(pk=lead.pk).update(lead_class="nurture", band="warm", score=30, owner=None)
    lead.refresh_from_db()
    with tenant_scope(tenant):
        assert enrollments_auto_enroll(tenant=tenant, now=timezone.now()) == 0
        assert not Enrollment.objects.filter(lead=lead).exists()
        assert any("erased" in p for p in lead_mailable_problems(lead=lead))
        # An enrolment from before (or made by hand) exits at the claim, before anything is written or sent.
        sequence = Sequence.objects.order_by("pk").first()
        enrollment = Enrollment.objects.create(tenant=tenant, sequence=sequence, lead=lead, kind=sequence.kind,
                                               next_position=1, next_due_at=timezone.now())
        claim = messages_claim(tenant=tenant, nurture=NurtureSettings.objects.get(), now=timezone.now())
    assert claim.message_ids == [] and not Message.objects.unscoped().filter(lead=lead).exists()
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.EXITED and enrollment.exit_reason == ExitReason.UNSUBSCRIBED
    assert len(smtp_server.messages) == sent_before


def test_erasure_in_one_tenant_leaves_the_same_email_in_another_untouched(client, tenant, other_tenant, lead_form,
                                                                           built, admin_actor):
    other_form = LeadFormFactory(tenant=other_tenant, name="Globex site", allowed_origins=["*"])
    from tests.support.intake import post_json

    response = post_json(client, {"email": built.email, "first_name": built.first_name, "last_name": built.last_name,
                                  "phone": built.phone}, form=other_form)
    assert response.status_code == 201
    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    other = Lead.objects.unscoped().get(tenant=other_tenant, email=built.email)
    assert (other.first_name, other.last_name, other.phone, other.erased_at) == (
        built.first_name, built.last_name, built.phone, None)
    assert Touch.objects.unscoped().get(lead=other).payload["email"] == built.email
    held = rows_holding(built.needles)
    assert set(held) <= {"leads_lead", "leads_touch", "audit_auditevent", "leads_idempotencyrecord"}, held
    assert erased_emails(tenant=other_tenant, emails=[built.email]) == set()
    assert LeadForm.objects.unscoped().filter(tenant=other_tenant).exists()


def test_an_email_that_is_not_an_address_is_a_field_error(tenant, admin_actor):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        person_erase(tenant=tenant, email="   ", actor=admin_actor)
    assert error.value.message_dict == {"email": ["Enter the person's email address."]}
    assert not AuditEvent.objects.unscoped().filter(action="person.erased").exists()


def test_signals_about_an_erased_person_without_a_lead_are_refused(tenant, built, admin_actor):
    from leads.erasure import ERASED_SIGNAL_MESSAGE
    from leads.services.signals import SignalInput, signals_record

    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    with tenant_scope(tenant):
        result = signals_record(tenant=tenant, actor=admin_actor, items=[SignalInput(
            index=0, type="pricing_page_view", occurred_at=timezone.now(), email=built.email,
            properties={"name": built.first_name})]).as_dict()
    assert result["results"] == [{"index": 0, "status": "error", "errors": {"email": [ERASED_SIGNAL_MESSAGE]}}]
    assert rows_holding(built.needles) == {}


def test_a_colleague_on_the_same_switchboard_and_a_namesake_keep_their_data(client, tenant, lead_form, built,
                                                                            admin_actor):
    from tests.support.intake import post_json

    colleague = "colleague@marrow-widgets.example"
    namesake = "namesake@elsewhere.example"
    for email, first, last in ((colleague, "Otto", "Brenner"), (namesake, built.first_name, built.last_name)):
        response = post_json(client, {"email": email, "first_name": first, "last_name": last,
                                      "phone": built.phone_typed}, form=lead_form)
        assert response.status_code == 201
    person_erase(tenant=tenant, email=built.email, actor=admin_actor)
    kept = {lead.email: lead for lead in Lead.objects.unscoped().filter(email__in=[colleague, namesake])}
    assert kept[colleague].phone == built.phone and kept[namesake].phone == built.phone
    assert (kept[namesake].first_name, kept[namesake].last_name) == (built.first_name, built.last_name)
    assert Touch.objects.unscoped().get(lead=kept[namesake]).payload["first_name"] == built.first_name
    assert kept[colleague].erased_at is None and kept[namesake].erased_at is None


def test_erasure_is_set_based_its_queries_do_not_grow_with_the_persons_rows(client, tenant, lead_form, admin_actor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leads.models import ActivityKind
    from leads.services.signals import SignalInput, signals_record
    from tests.support.intake import post_json
    from workspace.services.activities import activity_log

    def erase_queries(notes: int, name: str) -> int:
        email = f"{name.lower()}@privacy.example"
        assert post_json(client, {"email": email, "first_name": name, "last_name": "Person"},
                         form=lead_form).status_code == 201
        lead = Lead.objects.unscoped().get(tenant=tenant, email=email)
        with tenant_scope(tenant):
            for n in range(notes):
                activity_log(lead=lead, kind=ActivityKind.NOTE, actor=admin_actor, subject=f"Note {n}",
                             body=f"{name} Person said {n}")
            signals_record(tenant=tenant, actor=admin_actor, items=[SignalInput(
                index=n, type="pricing_page_view", occurred_at=timezone.now(), email=email) for n in range(notes)])
        with CaptureQueriesContext(connection) as queries:
            person_erase(tenant=tenant, email=email, actor=admin_actor)
        assert rows_holding([email, name]) == {}
        return len(queries)

    # One statement per table and scope, whatever the number of the person's rows.
    assert erase_queries(1, "Setbasedone") == erase_queries(15, "Setbasedfifteen")


def test_a_person_known_only_by_waiting_signals_and_a_suppression_is_erased_too(tenant, admin_actor):
    from leads.models import Signal
    from leads.services.signals import SignalInput, signals_record
    from nurture.models import SuppressionReason
    from nurture.services.tracking import suppression_add

    email = "only-tracked@privacy.example"
    with tenant_scope(tenant):
        signals_record(tenant=tenant, actor=admin_actor, items=[SignalInput(
            index=0, type="pricing_page_view", occurred_at=timezone.now(), email=email,
            properties={"page": "/pricing", "visitor": email})])
        suppression_add(tenant=tenant, email=email, reason=SuppressionReason.UNSUBSCRIBED, actor=admin_actor)
    assert Signal.objects.unscoped().filter(email=email, lead__isnull=True).count() == 1
    result = person_erase(tenant=tenant, email=email, actor=admin_actor)
    assert result.leads == 0
    assert result.counts["leads_signal (waiting, deleted)"] == 1
    assert result.counts["nurture_suppression (deleted)"] == 1
    assert rows_holding([email]) == {}
    # Still never mailed: the hashed entry replaces the suppression entry.
    assert erased_emails(tenant=tenant, emails=[email]) == {email}


def test_two_people_whose_tracker_ids_quote_their_address_are_both_erased(client, tenant, lead_form, admin_actor):
    from leads.models import Signal
    from leads.services.signals import SignalInput, signals_record
    from tests.support.intake import post_json

    for email in ("first.tracked@privacy.example", "second.tracked@privacy.example"):
        assert post_json(client, {"email": email}, form=lead_form).status_code == 201
        with tenant_scope(tenant):
            signals_record(tenant=tenant, actor=admin_actor, items=[SignalInput(
                index=0, type="pricing_page_view", occurred_at=timezone.now(), email=email,
                external_id=f"visit:{email}")])
        person_erase(tenant=tenant, email=email, actor=admin_actor)
    ids = list(Signal.objects.unscoped().filter(tenant=tenant).values_list("external_id", flat=True))
    assert len(ids) == 2 and all(i.startswith("erased-") for i in ids) and len(set(ids)) == 2
