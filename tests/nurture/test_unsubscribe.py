"""Unsubscribing from a nurture email: the public page, RFC 8058 one-click POSTs without CSRF, idempotency,
forged and expired links, the suppression list, and tenant isolation."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.models import AuditEvent
from leads.models import Lead, Signal
from nurture import tokens
from nurture.models import Enrollment, EnrollmentStatus, ExitReason, Suppression, SuppressionReason
from nurture.services.enrollment import NURTURE_AGENT, lead_mailable_problems
from nurture.services.tracking import (
    ALREADY_UNSUBSCRIBED,
    UNSUBSCRIBE_CONSENT_SOURCE,
    UNSUBSCRIBED,
    message_unsubscribe,
    suppression_add,
)
from nurture.views import mask_email
from tests.support.nurture import (
    NurtureLeadFactory,
    old_token,
    scored_lead,
    sent_message,
    sequence_with_steps,
)

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"


def unsubscribe_url(message_id) -> str:
    return reverse("nurture-unsubscribe", args=[tokens.unsubscribe_token(message_id)])


def exits(lead) -> list[AuditEvent]:
    return list(AuditEvent.objects.unscoped().filter(tenant_id=lead.tenant_id, action="nurture.exited",
                                                     object_id=str(lead.pk)))


def assert_unsubscribed(message) -> None:
    lead = Lead.objects.unscoped().get(pk=message.lead_id)
    assert lead.marketing_consent is False
    assert lead.consent_source == UNSUBSCRIBE_CONSENT_SOURCE
    suppression = Suppression.objects.unscoped().get(tenant_id=message.tenant_id, email=message.to_email)
    assert suppression.reason == SuppressionReason.UNSUBSCRIBED
    enrollment = Enrollment.objects.unscoped().get(pk=message.enrollment_id)
    assert enrollment.status == EnrollmentStatus.EXITED
    assert enrollment.exit_reason == ExitReason.UNSUBSCRIBED
    assert enrollment.next_due_at is None
    assert lead_mailable_problems(lead=lead)


def assert_nothing_changed(message) -> None:
    lead = Lead.objects.unscoped().get(pk=message.lead_id)
    assert lead.marketing_consent is True
    assert not Suppression.objects.unscoped().exists()
    assert Enrollment.objects.unscoped().get(pk=message.enrollment_id).status == EnrollmentStatus.ACTIVE
    assert not Signal.objects.unscoped().exists()
    assert not AuditEvent.objects.unscoped().filter(action__startswith="nurture.").exists()


# --- the page -------------------------------------------------------------------------------------------


def test_get_shows_a_branded_page_with_a_button_and_changes_nothing(tenant):
    message = sent_message(tenant=tenant, lead=NurtureLeadFactory(tenant=tenant, email="ada.lovelace@corp.example"))
    response = Client().get(unsubscribe_url(message.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Corp" in html  # the tenant's name, not leadmgmt's navigation
    assert "a**********e@corp.example" in html and "ada.lovelace@corp.example" not in html
    assert 'method="post"' in html and "Unsubscribe</button>" in html
    assert "/static/css/app.css" in html
    assert "mainnav" not in html and "Sign out" not in html
    assert "no-store" in response["Cache-Control"] and response["X-Robots-Tag"].startswith("noindex")
    assert_nothing_changed(message)  # link scanners prefetch GETs: they must not unsubscribe anyone


def test_posting_the_page_form_unsubscribes_without_a_csrf_token(tenant, django_capture_on_commit_callbacks):
    lead = scored_lead(tenant)
    message = sent_message(tenant=tenant, lead=lead)
    client = Client(enforce_csrf_checks=True)
    assert client.get(unsubscribe_url(message.pk)).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(unsubscribe_url(message.pk))

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert_unsubscribed(message)
    [signal] = Signal.objects.unscoped().filter(lead=lead, type="unsubscribe")
    assert signal.external_id == f"nurture:{message.pk}:unsubscribe" and signal.processed_at is not None
    [event] = AuditEvent.objects.unscoped().filter(action="nurture.unsubscribed", object_id=str(lead.pk))
    assert event.actor_name == "Email recipient"
    assert event.changes["marketing_consent"] == [True, False]
    assert event.metadata["one_click"] is False and event.metadata["message_id"] == str(message.pk)
    assert [e.metadata["reason"] for e in exits(lead)] == ["unsubscribed"]
    # The unsubscribe signal lowers the score (seed 002: -20).
    assert lead.score == 30
    assert Lead.objects.unscoped().get(pk=lead.pk).score == 10


def test_get_after_unsubscribing_says_so_without_a_button(tenant):
    message = sent_message(tenant=tenant)
    message_unsubscribe(message_id=message.pk, one_click=False)
    html = Client().get(unsubscribe_url(message.pk)).content.decode()
    assert "already unsubscribed" in html and "<button" not in html


# --- RFC 8058 one-click -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_one_click_post_from_a_mail_provider_works_without_csrf_cookie(tenant, content_type):
    message = sent_message(tenant=tenant)
    client = Client(enforce_csrf_checks=True)  # no cookie, no token, like Gmail's servers
    response = client.post(unsubscribe_url(message.pk), data=ONE_CLICK, content_type=content_type)
    assert response.status_code == 200
    assert_unsubscribed(message)
    [event] = AuditEvent.objects.unscoped().filter(action="nurture.unsubscribed")
    assert event.metadata["one_click"] is True


def test_one_click_multipart_post_is_recognised(tenant):
    message = sent_message(tenant=tenant)
    response = Client(enforce_csrf_checks=True).post(unsubscribe_url(message.pk), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert AuditEvent.objects.unscoped().get(action="nurture.unsubscribed").metadata["one_click"] is True


def test_one_click_is_idempotent_one_suppression_one_signal_one_exit(tenant, django_capture_on_commit_callbacks):
    lead = scored_lead(tenant)
    message = sent_message(tenant=tenant, lead=lead)
    client = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(unsubscribe_url(message.pk), data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
    score_after_first = Lead.objects.unscoped().get(pk=lead.pk).score
    assert score_after_first == 10
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = client.post(unsubscribe_url(message.pk), data=ONE_CLICK,
                             content_type="application/x-www-form-urlencoded")
    assert callbacks == []  # nothing to process, nothing re-scored
    assert first.status_code == second.status_code == 200
    assert "already unsubscribed" in second.content.decode()
    assert Suppression.objects.unscoped().filter(tenant=tenant).count() == 1
    assert Signal.objects.unscoped().filter(lead=lead, type="unsubscribe").count() == 1
    assert len(exits(lead)) == 1
    assert AuditEvent.objects.unscoped().filter(action="nurture.unsubscribed").count() == 1
    assert AuditEvent.objects.unscoped().filter(action="nurture.suppressed").count() == 1
    assert Lead.objects.unscoped().get(pk=lead.pk).score == score_after_first
    assert message_unsubscribe(message_id=message.pk, one_click=True) == ALREADY_UNSUBSCRIBED


def test_unsubscribing_from_an_older_email_later_changes_nothing_more(tenant):
    lead = NurtureLeadFactory(tenant=tenant)
    sequence = sequence_with_steps(tenant=tenant, steps=3)
    first = sent_message(tenant=tenant, lead=lead, sequence=sequence, position=1)
    second = sent_message(tenant=tenant, lead=lead, sequence=sequence, position=2)
    assert message_unsubscribe(message_id=second.pk, one_click=True) == UNSUBSCRIBED
    assert message_unsubscribe(message_id=first.pk, one_click=False) == ALREADY_UNSUBSCRIBED
    assert Signal.objects.unscoped().filter(type="unsubscribe").count() == 1


def test_unsubscribe_withdraws_consent_even_when_the_address_was_already_suppressed(tenant):
    message = sent_message(tenant=tenant)
    Suppression.objects.unscoped().create(tenant=tenant, email=message.to_email, reason=SuppressionReason.MANUAL)
    assert message_unsubscribe(message_id=message.pk, one_click=False) == UNSUBSCRIBED
    lead = Lead.objects.unscoped().get(pk=message.lead_id)
    assert lead.marketing_consent is False
    assert Suppression.objects.unscoped().get().reason == SuppressionReason.MANUAL  # kept, not duplicated


def test_unsubscribe_ends_every_live_sequence_of_the_lead(tenant):
    lead = NurtureLeadFactory(tenant=tenant)
    message = sent_message(tenant=tenant, lead=lead)
    other = sequence_with_steps(tenant=tenant, steps=1, kind="mql_nurture", name="MQL nurture")
    paused = Enrollment.objects.unscoped().create(tenant=tenant, sequence=other, lead=lead, kind=other.kind,
                                                  status=EnrollmentStatus.PAUSED, paused_reason="rep_working")
    message_unsubscribe(message_id=message.pk, one_click=True)
    paused.refresh_from_db()
    assert paused.status == EnrollmentStatus.EXITED and paused.exit_reason == ExitReason.UNSUBSCRIBED
    assert len(exits(lead)) == 2


# --- forged and expired links ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_unsubscribe_tokens_get_a_clear_400_and_change_nothing(tenant, method):
    message = sent_message(tenant=tenant)
    good = tokens.unsubscribe_token(message.pk)
    for bad in (good[:-4] + "AAAA", "nonsense", tokens.open_token(message.pk),
                tokens.click_token(message.pk, "https://acme.example/")):
        response = getattr(Client(enforce_csrf_checks=True), method)(
            reverse("nurture-unsubscribe", args=[bad]), **({"data": ONE_CLICK, "content_type": "text/plain"}
                                                          if method == "post" else {}))
        assert response.status_code == 400, bad
        html = response.content.decode()
        assert "This link is not valid" in html and "Nothing was changed" in html
    assert_nothing_changed(message)


@pytest.mark.parametrize("method", ["get", "post"])
def test_expired_unsubscribe_token_gets_a_410_page_and_changes_nothing(tenant, method):
    message = sent_message(tenant=tenant)
    url = reverse("nurture-unsubscribe", args=[old_token(tokens.unsubscribe_token, message.pk)])
    response = getattr(Client(enforce_csrf_checks=True), method)(url)
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()
    assert_nothing_changed(message)


def test_token_of_a_deleted_message_gets_a_404_page(tenant):
    response = Client().post(unsubscribe_url("0b0b0b0b-0000-4000-8000-000000000000"), data=ONE_CLICK,
                             content_type="text/plain")
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert not Suppression.objects.unscoped().exists()


def test_other_methods_are_refused(tenant):
    message = sent_message(tenant=tenant)
    assert Client().put(unsubscribe_url(message.pk)).status_code == 405
    assert_nothing_changed(message)


# --- tenant isolation ----------------------------------------------------------------------------------------


def test_a_token_of_tenant_a_only_unsubscribes_in_tenant_a(tenant, other_tenant):
    email = "same@person.example"
    mine = sent_message(tenant=tenant, lead=NurtureLeadFactory(tenant=tenant, email=email))
    theirs = sent_message(tenant=other_tenant, lead=NurtureLeadFactory(tenant=other_tenant, email=email))

    response = Client().post(unsubscribe_url(mine.pk), data=ONE_CLICK, content_type="text/plain")

    assert response.status_code == 200
    assert_unsubscribed(mine)
    assert Lead.objects.unscoped().get(pk=theirs.lead_id).marketing_consent is True
    assert Enrollment.objects.unscoped().get(pk=theirs.enrollment_id).status == EnrollmentStatus.ACTIVE
    assert list(Suppression.objects.unscoped().values_list("tenant_id", flat=True)) == [tenant.pk]
    assert not AuditEvent.objects.unscoped().filter(tenant=other_tenant).exists()
    assert "Globex" not in Client().get(unsubscribe_url(mine.pk)).content.decode()


# --- suppression_add --------------------------------------------------------------------------------------


def test_suppression_add_lowercases_is_idempotent_and_ends_sequences_of_every_matching_lead(tenant):
    message = sent_message(tenant=tenant, lead=NurtureLeadFactory(tenant=tenant, email="grace@corp.example"))
    first, created = suppression_add(tenant=tenant, email="  Grace@Corp.Example ", reason=SuppressionReason.MANUAL,
                                     note="Asked by phone", actor=NURTURE_AGENT)
    again, created_again = suppression_add(tenant=tenant, email="grace@corp.example",
                                           reason=SuppressionReason.UNSUBSCRIBED, actor=NURTURE_AGENT)
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk and again.email == "grace@corp.example" and again.reason == SuppressionReason.MANUAL
    enrollment = Enrollment.objects.unscoped().get(pk=message.enrollment_id)
    assert enrollment.status == EnrollmentStatus.EXITED and enrollment.exit_reason == ExitReason.MANUAL
    assert AuditEvent.objects.unscoped().filter(action="nurture.suppressed").count() == 1
    assert AuditEvent.objects.unscoped().filter(action="nurture.exited").count() == 1


def test_suppression_add_refuses_a_blank_address(tenant):
    with pytest.raises(ValidationError) as excinfo:
        suppression_add(tenant=tenant, email="  ", reason=SuppressionReason.MANUAL, actor=NURTURE_AGENT)
    assert "email" in excinfo.value.message_dict
    assert not Suppression.objects.unscoped().exists()


@pytest.mark.parametrize(("email", "masked"), [
    ("ada.lovelace@corp.example", "a**********e@corp.example"),
    ("al@corp.example", "a*@corp.example"),
    ("a@corp.example", "a*@corp.example"),
    ("abc@corp.example", "a*c@corp.example"),
])
def test_mask_email(email, masked):
    assert mask_email(email) == masked


def test_suppression_add_refuses_an_unknown_reason(tenant):
    with pytest.raises(ValidationError) as excinfo:
        suppression_add(tenant=tenant, email="a@b.example", reason="because", actor=NURTURE_AGENT)
    assert "reason" in excinfo.value.message_dict
    assert not Suppression.objects.unscoped().exists()


@pytest.mark.django_db(transaction=True)
def test_two_one_click_posts_at_once_unsubscribe_once(tenant):
    """Mail providers retry quickly; two concurrent POSTs queue on the lead's row lock."""
    import threading

    from django.db import connection

    message = sent_message(tenant=tenant)
    barrier = threading.Barrier(2)
    outcomes, failures = [], []

    def unsubscribe():
        try:
            barrier.wait(timeout=10)
            outcomes.append(message_unsubscribe(message_id=message.pk, one_click=True))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=unsubscribe) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert sorted(outcomes) == sorted([UNSUBSCRIBED, ALREADY_UNSUBSCRIBED])
    assert Suppression.objects.unscoped().count() == 1
    assert Signal.objects.unscoped().filter(type="unsubscribe").count() == 1
    assert AuditEvent.objects.unscoped().filter(action="nurture.exited").count() == 1
