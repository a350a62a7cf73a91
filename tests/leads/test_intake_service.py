"""intake_submit() and its Idempotency-Key steps, called directly (the endpoint is in test_intake.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leads.models import IdempotencyRecord, Lead, Touch
from leads.services.intake import (
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    IntakeResult,
    idempotency_expired_delete,
    idempotency_key_clean,
    idempotency_replay,
    idempotency_store,
    idempotency_window_start,
    intake_request_hash,
    intake_submit,
)
from tests.support.factories import LeadFormFactory
from tests.support.intake import row_counts

pytestmark = pytest.mark.django_db

ADA = {"email": "ada@analytical.example", "first_name": "Ada"}


@pytest.fixture
def submit(lead_form):
    def _submit(data, **kwargs):
        with tenant_scope(lead_form.tenant):
            return intake_submit(form=lead_form, data=data, **kwargs)

    return _submit


# --- intake_submit ---------------------------------------------------------------------------

def test_submit_creates_a_lead_and_answers_201_with_its_id(submit, lead_form):
    result = submit(ADA, ip_address="192.0.2.7", user_agent="UA")
    lead = Lead.objects.unscoped().get(pk=result.body["id"])
    assert (result.status_code, result.body["result"], result.replayed) == (201, "created", False)
    assert (lead.tenant, lead.form, lead.email) == (lead_form.tenant, lead_form, "ada@analytical.example")
    touch = Touch.objects.unscoped().get(lead=lead)
    assert (touch.ip_address, touch.user_agent) == ("192.0.2.7", "UA")


def test_submit_of_a_known_email_merges_with_200(submit):
    first = submit(ADA)
    again = submit({**ADA, "job_title": "CTO"})
    assert (again.status_code, again.body) == (200, {"id": first.body["id"], "result": "merged"})


def test_submit_drops_the_form_key_field_from_the_payload(submit):
    result = submit({**ADA, "form_key": "whatever"})
    assert "form_key" not in Touch.objects.unscoped().get(lead_id=result.body["id"]).payload


def test_filled_honeypot_answers_created_and_writes_nothing(submit, settings):
    before = row_counts()
    result = submit({**ADA, settings.INTAKE_HONEYPOT_FIELD: "http://spam.example"}, idempotency_key="k" * 500)
    assert (result.status_code, result.body["result"], result.replayed) == (201, "created", False)
    assert row_counts() == before


def test_invalid_submission_raises_validation_error_and_keeps_no_record(submit):
    before = row_counts()
    with pytest.raises(ValidationError):
        submit({"email": "nope"}, idempotency_key="bad-1")
    assert row_counts() == before


# --- idempotency through intake_submit -------------------------------------------------------

def test_same_key_and_body_replays_the_first_answer_without_capturing_again(submit, lead_form):
    first = submit(ADA, idempotency_key=" req-1 ")
    touches = Touch.objects.unscoped().count()
    again = submit(ADA, idempotency_key="req-1")
    assert again == IntakeResult(first.status_code, first.body, replayed=True)
    assert Touch.objects.unscoped().count() == touches
    record = IdempotencyRecord.objects.unscoped().get(form=lead_form, key="req-1")
    assert (record.status_code, record.response_body) == (201, first.body)


def test_same_key_with_another_body_raises_key_reused(submit):
    submit(ADA, idempotency_key="req-2")
    with pytest.raises(IdempotencyKeyReused):
        submit({**ADA, "job_title": "CEO"}, idempotency_key="req-2")


def test_a_key_is_per_form(submit, tenant):
    submit(ADA, idempotency_key="req-3")
    other_form = LeadFormFactory(tenant=tenant, name="Other")
    with tenant_scope(tenant):
        result = intake_submit(form=other_form, data={"email": "x@other.example"}, idempotency_key="req-3")
    assert (result.status_code, result.replayed) == (201, False)


def test_an_expired_key_starts_a_new_submission(submit, lead_form):
    submit(ADA, idempotency_key="req-4")
    IdempotencyRecord.objects.unscoped().update(created_at=timezone.now() - timedelta(hours=25))
    later = submit(ADA, idempotency_key="req-4")
    assert (later.status_code, later.replayed) == (200, False)
    assert IdempotencyRecord.objects.unscoped().get(form=lead_form, key="req-4").status_code == 200


# --- the idempotency steps -------------------------------------------------------------------

@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "caf\u00e9", "tab\there"])
def test_key_clean_refuses_blank_long_or_non_ascii_keys(key):
    with pytest.raises(IdempotencyKeyInvalid, match="1 to 200 printable ASCII"):
        idempotency_key_clean(key=key)


def test_key_clean_strips_and_passes_none_through():
    assert idempotency_key_clean(key=None) is None
    assert idempotency_key_clean(key="  abc-123 ") == "abc-123"
    assert idempotency_key_clean(key="k" * 200) == "k" * 200


def test_request_hash_ignores_key_order_but_not_values():
    assert intake_request_hash(payload={"a": 1, "b": "x"}) == intake_request_hash(payload={"b": "x", "a": 1})
    assert intake_request_hash(payload={"a": 1}) != intake_request_hash(payload={"a": 2})


def test_store_then_replay_gives_the_stored_answer(lead_form):
    result = IntakeResult(201, {"id": "abc", "result": "created"})
    record = idempotency_store(form=lead_form, key="k-1", request_hash="h1", result=result)
    assert (record.tenant, record.form, record.key) == (lead_form.tenant, lead_form, "k-1")
    assert idempotency_replay(record=record, request_hash="h1") == IntakeResult(201, result.body, replayed=True)
    with pytest.raises(IdempotencyKeyReused):
        idempotency_replay(record=record, request_hash="h2")


def test_expired_delete_keeps_a_record_from_inside_the_window(lead_form):
    result = IntakeResult(200, {"id": "abc", "result": "merged"})
    old = idempotency_store(form=lead_form, key="old", request_hash="h", result=result)
    fresh = idempotency_store(form=lead_form, key="fresh", request_hash="h", result=result)
    IdempotencyRecord.objects.unscoped().filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    cutoff = idempotency_window_start()
    idempotency_expired_delete(form=lead_form, key="old", cutoff=cutoff)
    idempotency_expired_delete(form=lead_form, key="fresh", cutoff=cutoff)
    assert list(IdempotencyRecord.objects.unscoped().values_list("pk", flat=True)) == [fresh.pk]


def test_window_start_is_the_ttl_before_now(settings):
    now = timezone.now()
    assert idempotency_window_start(now=now) == now - timedelta(hours=settings.INTAKE_IDEMPOTENCY_TTL_HOURS)
