"""The email provider's bounce callback: the tenant's secret, hard bounces and complaints suppress, soft
bounces are noted on the message, retries change nothing, bad bodies are refused whole, tenants stay apart."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leads.models import Lead
from nurture.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Message,
    MessageStatus,
    Suppression,
)
from nurture.services.tracking import BounceOutcome, bounce_record
from tests.support.nurture import NurtureLeadFactory, NurtureSettingsFactory, sent_message

pytestmark = pytest.mark.django_db


def _raw_secret(tenant) -> str:
    """A fresh bounce secret for `tenant` (only its hash is stored; the raw value is what providers send)."""
    row = NurtureSettingsFactory(tenant=tenant)
    raw = row.bounce_secret_generate()
    row.save(update_fields=["bounce_secret"])
    return raw


@pytest.fixture
def secret(tenant):
    return _raw_secret(tenant)


@pytest.fixture
def other_secret(other_tenant):
    return _raw_secret(other_tenant)


def url(tenant) -> str:
    return f"/api/v1/nurture/bounces/{tenant.slug}/"


def post(tenant, body, *, secret=None, header="bearer"):
    client = APIClient()
    if secret is not None and header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    elif secret is not None:
        client.credentials(HTTP_X_BOUNCE_SECRET=secret)
    return client.post(url(tenant), body, format="json")


def nothing_written() -> bool:
    return (not Suppression.objects.unscoped().exists()
            and not AuditEvent.objects.unscoped().filter(action__startswith="nurture.").exists()
            and not Message.objects.unscoped().exclude(status=MessageStatus.SENT).exists()
            and not Message.objects.unscoped().exclude(error="").exists())


# --- the happy paths --------------------------------------------------------------------------------------


def test_hard_bounce_suppresses_ends_the_sequence_and_marks_the_message(tenant, secret):
    message = sent_message(tenant=tenant)
    occurred = timezone.now() - timedelta(minutes=5)
    response = post(tenant, {"email": message.to_email.upper(), "type": "hard", "message_id": str(message.pk),
                             "reason": "550 5.1.1 user unknown", "occurred_at": occurred.isoformat()}, secret=secret)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["results"] == [{"index": 0, "email": message.to_email, "status": "suppressed",
                                "message_id": str(message.pk)}]
    assert (body["suppressed"], body["recorded"], body["duplicates"], body["ignored"]) == (1, 0, 0, 0)
    suppression = Suppression.objects.unscoped().get(tenant=tenant)
    assert suppression.email == message.to_email and suppression.reason == "hard_bounce"
    assert "550 5.1.1" in suppression.note
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED and message.bounced_at == occurred
    assert message.error == "Hard bounce: 550 5.1.1 user unknown"
    enrollment = Enrollment.objects.unscoped().get(pk=message.enrollment_id)
    assert enrollment.status == EnrollmentStatus.EXITED and enrollment.exit_reason == ExitReason.BOUNCED
    [bounced] = AuditEvent.objects.unscoped().filter(action="nurture.bounced", object_id=str(message.lead_id))
    assert bounced.actor_name.startswith("Email provider") and bounced.metadata["kind"] == "hard"
    # Consent is the person's choice, not the mailbox's: a bounce does not withdraw it.
    assert Lead.objects.unscoped().get(pk=message.lead_id).marketing_consent is True


def test_the_x_bounce_secret_header_works_too(tenant, secret):
    message = sent_message(tenant=tenant)
    response = post(tenant, {"email": message.to_email, "type": "complaint"}, secret=secret, header="x-bounce-secret")
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "suppressed"
    assert Suppression.objects.unscoped().get().reason == "complaint"
    enrollment = Enrollment.objects.unscoped().get(pk=message.enrollment_id)
    assert enrollment.exit_reason == ExitReason.UNSUBSCRIBED
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED  # without an id: the latest email to the address


def test_soft_bounce_is_noted_on_the_message_and_suppresses_nothing(tenant, secret):
    message = sent_message(tenant=tenant)
    response = post(tenant, {"email": message.to_email, "type": "soft", "message_id": str(message.pk),
                             "reason": "452 4.2.2 mailbox full"}, secret=secret)
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "recorded"
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.error == "Soft bounce: 452 4.2.2 mailbox full"
    assert not Suppression.objects.unscoped().exists()
    assert Enrollment.objects.unscoped().get(pk=message.enrollment_id).status == EnrollmentStatus.ACTIVE
    assert AuditEvent.objects.unscoped().filter(action="nurture.bounced").get().metadata["kind"] == "soft"


def test_soft_bounce_for_an_address_never_mailed_is_ignored(tenant, secret):
    response = post(tenant, {"email": "stranger@nowhere.example", "type": "soft"}, secret=secret)
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "ignored"
    assert nothing_written()


def test_message_is_matched_by_its_smtp_message_id(tenant, secret):
    lead = NurtureLeadFactory(tenant=tenant)
    message = sent_message(tenant=tenant, lead=lead, smtp_message_id="<abc123@acme.example>")
    response = post(tenant, {"email": lead.email, "type": "hard", "message_id": "abc123@acme.example"}, secret=secret)
    assert response.json()["results"][0]["message_id"] == str(message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED


def test_a_message_id_for_another_address_is_not_touched(tenant, secret):
    message = sent_message(tenant=tenant)
    response = post(tenant, {"email": "someone.else@corp.example", "type": "hard", "message_id": str(message.pk)},
                    secret=secret)
    assert response.json()["results"][0] == {"index": 0, "email": "someone.else@corp.example",
                                             "status": "suppressed", "message_id": None}
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert Enrollment.objects.unscoped().get(pk=message.enrollment_id).status == EnrollmentStatus.ACTIVE


def test_a_batch_is_answered_per_item_and_retries_change_nothing(tenant, secret):
    hard = sent_message(tenant=tenant)
    soft = sent_message(tenant=tenant)
    batch = [{"email": hard.to_email, "type": "hard", "message_id": str(hard.pk)},
             {"email": soft.to_email, "type": "soft", "message_id": str(soft.pk), "reason": "mailbox full"},
             {"email": hard.to_email, "type": "hard"}]
    first = post(tenant, batch, secret=secret).json()
    assert [r["status"] for r in first["results"]] == ["suppressed", "recorded", "duplicate"]
    events = AuditEvent.objects.unscoped().count()

    again = post(tenant, batch, secret=secret).json()

    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate", "duplicate"]
    assert again["duplicates"] == 3
    assert Suppression.objects.unscoped().count() == 1
    assert AuditEvent.objects.unscoped().count() == events
    assert AuditEvent.objects.unscoped().filter(action="nurture.exited").count() == 1


def test_hard_bounce_of_an_already_suppressed_address_still_marks_its_new_message(tenant):
    message = sent_message(tenant=tenant)
    Suppression.objects.unscoped().create(tenant=tenant, email=message.to_email, reason="unsubscribed")
    result = bounce_record(tenant=tenant, email=message.to_email, kind="hard", message_id=str(message.pk))
    assert result.status == BounceOutcome.RECORDED
    assert Suppression.objects.unscoped().get().reason == "unsubscribed"
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED


def test_occurred_at_in_the_future_is_a_field_error(tenant, secret):
    message = sent_message(tenant=tenant)
    later = (timezone.now() + timedelta(days=1)).isoformat()
    response = post(tenant, {"email": message.to_email, "type": "hard", "occurred_at": later}, secret=secret)
    assert response.status_code == 400
    assert response.json() == {"errors": {"occurred_at": ["Must not be in the future."]}}
    assert nothing_written()


# --- the secret -------------------------------------------------------------------------------------------


def test_without_a_secret_the_callback_is_refused_and_nothing_written(tenant, secret):
    message = sent_message(tenant=tenant)
    response = post(tenant, {"email": message.to_email, "type": "hard"})
    assert response.status_code == 401
    assert "errors" in response.json() and response["WWW-Authenticate"].startswith("Bearer")
    assert nothing_written()


@pytest.mark.parametrize("wrong", ["nope", "x" * 43, "Bearer", " "])
def test_a_wrong_secret_is_refused_and_nothing_written(tenant, secret, wrong):
    message = sent_message(tenant=tenant)
    for header in ("bearer", "x-bounce-secret"):
        response = post(tenant, {"email": message.to_email, "type": "hard"}, secret=wrong, header=header)
        assert response.status_code == 401
    assert nothing_written()


def test_an_api_key_is_not_a_bounce_secret(tenant, secret, api_key):
    _key, raw = api_key
    message = sent_message(tenant=tenant)
    assert post(tenant, {"email": message.to_email, "type": "hard"}, secret=raw).status_code == 401
    assert nothing_written()


def test_unknown_tenant_answers_like_a_wrong_secret(tenant, secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    unknown = client.post("/api/v1/nurture/bounces/no-such-tenant/", {"email": "a@b.example", "type": "hard"},
                          format="json")
    wrong = post(tenant, {"email": "a@b.example", "type": "hard"}, secret="wrong")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert nothing_written()


def test_a_tenant_without_nurture_settings_or_inactive_is_refused(tenant, other_tenant, secret):
    assert post(other_tenant, {"email": "a@b.example", "type": "hard"}, secret=secret).status_code == 401
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])
    assert post(tenant, {"email": "a@b.example", "type": "hard"}, secret=secret).status_code == 401
    assert nothing_written()


def test_other_tenants_secret_on_this_tenants_url_is_refused(tenant, other_tenant, secret, other_secret):
    message = sent_message(tenant=tenant)
    response = post(tenant, {"email": message.to_email, "type": "hard"}, secret=other_secret)
    assert response.status_code == 401
    assert nothing_written()


def test_a_bounce_for_tenant_b_never_touches_tenant_a(tenant, other_tenant, secret, other_secret):
    email = "same@person.example"
    mine = sent_message(tenant=tenant, lead=NurtureLeadFactory(tenant=tenant, email=email))
    theirs = sent_message(tenant=other_tenant, lead=NurtureLeadFactory(tenant=other_tenant, email=email))
    # Tenant B reports a hard bounce, even naming tenant A's message id: only B's data changes.
    response = post(other_tenant, {"email": email, "type": "hard", "message_id": str(mine.pk)}, secret=other_secret)
    assert response.status_code == 200
    assert response.json()["results"][0]["message_id"] is None
    assert list(Suppression.objects.unscoped().values_list("tenant_id", flat=True)) == [other_tenant.pk]
    mine.refresh_from_db()
    assert mine.status == MessageStatus.SENT
    assert Enrollment.objects.unscoped().get(pk=mine.enrollment_id).status == EnrollmentStatus.ACTIVE
    assert Enrollment.objects.unscoped().get(pk=theirs.enrollment_id).status == EnrollmentStatus.EXITED
    assert not AuditEvent.objects.unscoped().filter(tenant=tenant).exists()


# --- bad bodies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "errors"), [
    ({"type": "hard"}, {"email": ["This field is required."]}),
    ({"email": "not-an-address", "type": "hard"}, {"email": ["Enter a valid email address."]}),
    ({"email": "a@b.example", "type": "bounced"}, {"type": ['"bounced" is not a valid choice.']}),
    ({"email": "a@b.example", "type": "hard", "occurred_at": "yesterday"},
     {"occurred_at": ["Datetime has wrong format. Use one of these formats instead: "
                      "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}),
    ({"email": "a@b.example", "type": "hard", "reason": "x\x00y"}, {"reason": ["Null characters are not allowed."]}),
    ([], {"detail": ["The list of bounce events is empty."]}),
    ("hard", {"detail": ["Send a bounce event object or a JSON list of them."]}),
])
def test_bad_bodies_get_field_errors_and_nothing_is_written(tenant, secret, body, errors):
    response = post(tenant, body, secret=secret)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert nothing_written()


def test_one_bad_event_refuses_the_whole_batch(tenant, secret):
    good = sent_message(tenant=tenant)
    response = post(tenant, [{"email": good.to_email, "type": "hard"}, {"email": "x@y.example"}, 7], secret=secret)
    assert response.status_code == 400
    assert response.json() == {"errors": {"1.type": ["This field is required."],
                                          "2.detail": ["Each bounce event must be a JSON object."]}}
    assert nothing_written()


def test_more_than_500_events_are_refused(tenant, secret):
    response = post(tenant, [{"email": f"p{i}@corp.example", "type": "hard"} for i in range(501)], secret=secret)
    assert response.status_code == 400
    assert response.json() == {"errors": {"detail": ["At most 500 events per request (501 sent)."]}}
    assert nothing_written()


def test_non_json_bodies_are_refused(tenant, secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post(url(tenant), "email=a@b.example&type=hard", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    broken = client.post(url(tenant), "{not json", content_type="application/json")
    assert broken.status_code == 400 and "errors" in broken.json()
    assert nothing_written()


def test_the_schema_documents_the_callback_and_its_secret():
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/nurture/bounces/{tenant_slug}/"]["post"]
    assert operation["security"] == [{"bounceSecret": []}]
    assert {"200", "400", "401"} <= set(operation["responses"])
    assert "bounceSecret" in schema["components"]["securitySchemes"]


def test_bounce_record_refuses_an_unknown_kind(tenant):
    from django.core.exceptions import ValidationError

    message = sent_message(tenant=tenant)
    with pytest.raises(ValidationError) as excinfo:
        bounce_record(tenant=tenant, email=message.to_email, kind="bogus")
    assert "type" in excinfo.value.message_dict
    assert nothing_written()
