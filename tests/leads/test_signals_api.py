"""POST /api/v1/signals/: per-item results, de-duplication, pending signals, processing, tenancy."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.celery import app as celery_app
from leadmgmt.tenancy.models import ApiScope
from leads.models import Lead, Signal, SignalType
from leads.services.signals import signals_process
from leads.signal_catalog import BUILTIN_SIGNAL_NAMES
from leads.tasks import signals_process_task, signals_sweep_task
from tests.support.factories import LeadFactory, api_key_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/signals/"


def iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def a_signal(**overrides) -> dict:
    return {"type": "pricing_page_view", "occurred_at": iso(timezone.now() - timedelta(minutes=5)), **overrides}


def client_with(tenant, scopes=None) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_catalog_covers_seed_002_engagement_table():
    assert {
        "pricing_page_view", "product_page_view", "blog_post_view", "email_open", "email_click", "unsubscribe",
        "whitepaper_download", "case_study_download", "webinar_registration", "webinar_attendance",
        "demo_request", "contact_form", "free_trial_signup", "page_view", "multi_page_session",
    } <= BUILTIN_SIGNAL_NAMES


def test_signal_for_known_lead_is_accepted_processed_and_audited(tenant, api_key, api_client, django_capture_on_commit_callbacks):
    lead = LeadFactory(tenant=tenant, email="ada@acme.example")
    occurred = timezone.now() - timedelta(minutes=3)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(URL, a_signal(email="Ada@ACME.example", occurred_at=iso(occurred),
                                                 external_id="evt-1", properties={"url": "/pricing"}), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1 and body["pending"] == 0 and body["duplicates"] == 0 and body["errors"] == 0
    [result] = body["results"]
    assert result["index"] == 0 and result["status"] == "accepted"
    signal = Signal.objects.unscoped().get(pk=result["id"])
    assert signal.lead_id == lead.id and signal.tenant_id == tenant.id and signal.api_key_id == api_key[0].id
    assert signal.properties == {"url": "/pricing"} and signal.external_id == "evt-1"
    assert len(callbacks) == 1  # processing enqueued after commit (eager Celery ran it)
    signal.refresh_from_db()
    lead.refresh_from_db()
    assert signal.processed_at is not None
    assert abs(lead.last_activity_at - occurred) < timedelta(milliseconds=1)
    received = AuditEvent.objects.unscoped().get(action="signal.received", object_id=str(signal.pk))
    assert received.actor_kind == "api_key" and received.actor_api_key_id == api_key[0].id
    assert received.metadata["type"] == "pricing_page_view" and received.metadata["lead_id"] == str(lead.id)
    processed = AuditEvent.objects.unscoped().get(action="lead.signals_processed", object_id=str(lead.id))
    assert processed.metadata["signal_ids"] == [signal.pk] and "last_activity_at" in processed.changes


def test_signal_for_unknown_email_is_kept_pending_and_not_processed(tenant, api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(URL, a_signal(email="  New.Person@Example.COM "), format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["results"][0]["status"] == "pending" and body["accepted"] == 1 and body["pending"] == 1
    signal = Signal.objects.unscoped().get(pk=body["results"][0]["id"])
    assert signal.lead_id is None and signal.email == "new.person@example.com" and signal.processed_at is None
    assert callbacks == []  # nothing to process until the lead arrives


def test_batch_answers_every_item_in_order(tenant, other_tenant, api_client):
    lead = LeadFactory(tenant=tenant, email="known@acme.example")
    foreign = LeadFactory(tenant=other_tenant, email="foreign@globex.example")
    items = [
        a_signal(lead_id=str(lead.id)),                                              # 0 accepted
        a_signal(email="later@acme.example", type="webinar_registration"),            # 1 pending
        a_signal(email="known@acme.example", type="no_such_type"),                    # 2 unknown type
        a_signal(email="known@acme.example", occurred_at="yesterday-ish"),            # 3 malformed time
        a_signal(email="known@acme.example", occurred_at=iso(timezone.now() + timedelta(hours=1))),  # 4 future
        a_signal(email="known@acme.example", properties=["not", "an", "object"]),     # 5 properties not object
        "not an object",                                                              # 6
        a_signal(lead_id=str(foreign.id)),                                            # 7 another tenant's lead
        a_signal(email="known@acme.example", lead_id=str(lead.id)),                   # 8 both identifiers
        a_signal(),                                                                   # 9 no identifier
        a_signal(email="not-an-email"),                                               # 10 bad email
        a_signal(lead_id="not-a-uuid"),                                               # 11 bad lead id
        {"email": "known@acme.example"},                                              # 12 type/time missing
    ]
    response = api_client.post(URL, items, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(len(items)))
    statuses = [r["status"] for r in body["results"]]
    assert statuses[:2] == ["accepted", "pending"] and set(statuses[2:]) == {"error"}
    assert (body["accepted"], body["pending"], body["duplicates"], body["errors"]) == (2, 1, 0, 11)
    errors = [r.get("errors", {}) for r in body["results"]]
    assert "type" in errors[2] and "occurred_at" in errors[3] and "occurred_at" in errors[4]
    assert "properties" in errors[5] and "detail" in errors[6] and errors[7] == {"lead_id": ["No lead with this id."]}
    assert "lead_id" in errors[8] and "email" in errors[9] and "email" in errors[10] and "lead_id" in errors[11]
    assert {"type", "occurred_at"} <= set(errors[12])
    assert Signal.objects.unscoped().count() == 2
    assert not Signal.objects.unscoped().filter(lead=foreign).exists()


def test_when_every_item_fails_the_answer_is_still_202_with_per_item_errors(tenant, api_client):
    response = api_client.post(URL, [a_signal(email="x@acme.example", type="bogus"), a_signal()], format="json")
    assert response.status_code == 202
    assert response.json()["errors"] == 2 and response.json()["accepted"] == 0
    assert Signal.objects.unscoped().count() == 0
    assert not AuditEvent.objects.unscoped().filter(action="signal.received").exists()


def test_resent_external_id_is_a_duplicate_and_writes_nothing(tenant, api_client):
    LeadFactory(tenant=tenant, email="ada@acme.example")
    first = api_client.post(URL, [a_signal(email="ada@acme.example", external_id="evt-9")], format="json").json()
    again = api_client.post(
        URL, [a_signal(email="ada@acme.example", external_id="evt-9", type="email_click"),
              a_signal(email="ada@acme.example", external_id="evt-10"),
              a_signal(email="ada@acme.example", external_id="evt-10")], format="json",
    ).json()
    original_id = first["results"][0]["id"]
    assert again["results"][0] == {"index": 0, "status": "duplicate", "id": original_id}
    assert again["results"][1]["status"] == "accepted"
    assert again["results"][2] == {"index": 2, "status": "duplicate", "id": again["results"][1]["id"]}
    assert (again["accepted"], again["duplicates"]) == (1, 2)
    assert Signal.objects.unscoped().get(external_id="evt-9").type == "pricing_page_view"
    assert Signal.objects.unscoped().count() == 2
    assert AuditEvent.objects.unscoped().filter(action="signal.received").count() == 2


def test_external_ids_are_unique_per_tenant_not_globally(tenant, other_tenant, api_client):
    other = client_with(other_tenant)
    mine = api_client.post(URL, a_signal(email="a@acme.example", external_id="shared-id"), format="json").json()
    theirs = other.post(URL, a_signal(email="a@acme.example", external_id="shared-id"), format="json").json()
    assert mine["results"][0]["status"] == theirs["results"][0]["status"] == "pending"
    assert mine["results"][0]["id"] != theirs["results"][0]["id"]


def test_tenant_defined_types_are_accepted_only_for_their_tenant(tenant, other_tenant, api_client):
    SignalType.objects.unscoped().create(tenant=tenant, name="trade_show_visit", label="Trade show visit")
    ok = api_client.post(URL, a_signal(email="a@acme.example", type="trade_show_visit"), format="json").json()
    refused = client_with(other_tenant).post(URL, a_signal(email="a@acme.example", type="trade_show_visit"), format="json").json()
    assert ok["results"][0]["status"] == "pending"
    assert refused["results"][0]["status"] == "error" and "type" in refused["results"][0]["errors"]


def test_another_tenants_key_cannot_attach_signals_to_my_leads(tenant, other_tenant):
    lead = LeadFactory(tenant=tenant, email="ada@acme.example")
    other = client_with(other_tenant)
    by_id = other.post(URL, a_signal(lead_id=str(lead.id)), format="json").json()
    by_email = other.post(URL, a_signal(email="ada@acme.example"), format="json").json()
    assert by_id["results"][0] == {"index": 0, "status": "error", "errors": {"lead_id": ["No lead with this id."]}}
    # The email is simply not a lead of the other tenant: kept there as pending, never attached to mine.
    assert by_email["results"][0]["status"] == "pending"
    stored = Signal.objects.unscoped().get(pk=by_email["results"][0]["id"])
    assert stored.tenant_id == other_tenant.id and stored.lead_id is None
    assert not Signal.objects.unscoped().filter(lead=lead).exists()


def test_properties_are_bounded_in_size(tenant, api_client, settings):
    settings.SIGNALS_MAX_PROPERTIES_BYTES = 100
    body = api_client.post(URL, a_signal(email="a@acme.example", properties={"blob": "x" * 200}), format="json").json()
    assert body["results"][0]["status"] == "error" and "properties" in body["results"][0]["errors"]


def test_null_characters_in_properties_are_an_item_error_not_a_500(tenant, api_client):
    body = api_client.post(URL, [a_signal(email="a@acme.example", properties={"note": "a\x00b"}),
                                 a_signal(email="a@acme.example", properties={"path": "C:\\u0000"})], format="json").json()
    assert body["results"][0]["status"] == "error" and "properties" in body["results"][0]["errors"]
    assert body["results"][1]["status"] == "pending"  # a literal backslash-u is just text


def test_a_number_where_the_schema_says_string_is_an_item_error_not_text(tenant, api_client):
    body = api_client.post(URL, [a_signal(email="a@acme.example", type=404), a_signal(email=5),
                                 a_signal(email="a@acme.example", external_id=7)], format="json").json()
    assert [item["status"] for item in body["results"]] == ["error", "error", "error"]
    assert [set(item["errors"]) for item in body["results"]] == [{"type"}, {"email"}, {"external_id"}]
    assert Signal.objects.unscoped().count() == 0


def test_small_clock_skew_is_accepted_and_activity_is_never_in_the_future(tenant, api_client, django_capture_on_commit_callbacks):
    lead = LeadFactory(tenant=tenant, email="ada@acme.example")
    with django_capture_on_commit_callbacks(execute=True):
        body = api_client.post(URL, a_signal(email="ada@acme.example", occurred_at=iso(timezone.now() + timedelta(seconds=30))),
                               format="json").json()
    assert body["results"][0]["status"] == "accepted"
    lead.refresh_from_db()
    assert lead.last_activity_at <= timezone.now()


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        ('"just a string"', "application/json"),
        ("42", "application/json"),
        ("[]", "application/json"),
        ("{not json", "application/json"),
        ("", "application/json"),
    ],
)
def test_envelope_errors_are_400_with_field_errors(tenant, api_client, payload, content_type):
    response = api_client.generic("POST", URL, payload, content_type=content_type)
    assert response.status_code == 400
    assert set(response.json()) == {"errors"} and response.json()["errors"]["detail"]
    assert Signal.objects.unscoped().count() == 0


def test_more_than_1000_signals_is_400(tenant, api_client):
    response = api_client.post(URL, [a_signal(email=f"p{i}@acme.example") for i in range(1001)], format="json")
    assert response.status_code == 400
    assert "1000" in response.json()["errors"]["detail"][0]
    assert Signal.objects.unscoped().count() == 0


def test_form_encoded_body_is_415(tenant, api_client):
    response = api_client.post(URL, {"email": "a@acme.example"}, format="multipart")
    assert response.status_code == 415 and "errors" in response.json()


def test_oversized_body_is_413(tenant, api_client, settings):
    settings.SIGNALS_MAX_BODY_BYTES = 1000
    response = api_client.post(URL, [a_signal(email=f"p{i}@acme.example") for i in range(50)], format="json")
    assert response.status_code == 413 and "errors" in response.json()


def test_key_without_signals_scope_is_403_and_anonymous_is_401(tenant, make_member, client_for):
    response = client_with(tenant, scopes=[ApiScope.LEADS_READ]).post(URL, a_signal(email="a@acme.example"), format="json")
    assert response.status_code == 403 and "signals:write" in response.json()["errors"]["detail"][0]
    assert APIClient().post(URL, a_signal(email="a@acme.example"), format="json").status_code == 401
    # Signals come from integrations; a signed-in member's session is not an API key.
    member = client_for(make_member(tenant))
    assert member.post(URL, a_signal(email="a@acme.example"), format="json").status_code == 401
    assert Signal.objects.unscoped().count() == 0


def test_a_batch_of_1000_costs_a_bounded_number_of_queries(tenant, api_client, django_assert_max_num_queries):
    known = [LeadFactory(tenant=tenant, email=f"known{i}@acme.example") for i in range(20)]
    items = []
    for i in range(1000):
        if i % 3 == 0:
            items.append(a_signal(lead_id=str(known[i % 20].id), external_id=f"evt-{i}"))
        elif i % 3 == 1:
            items.append(a_signal(email=f"known{i % 20}@acme.example", type="email_open"))
        else:
            items.append(a_signal(email=f"stranger{i}@acme.example", external_id=f"evt-{i}", properties={"i": i}))
    with django_assert_max_num_queries(15):
        response = api_client.post(URL, items, format="json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 1000
    # Re-sending the batch: the keyed two thirds are duplicates, still with bounded queries.
    with django_assert_max_num_queries(15):
        again = api_client.post(URL, items, format="json").json()
    assert again["duplicates"] == 667 and again["accepted"] == 333
    assert Signal.objects.unscoped().count() == 1333
    assert AuditEvent.objects.unscoped().filter(action="signal.received").count() == 1333


def test_processing_a_large_batch_is_set_based(tenant, django_assert_max_num_queries):
    leads = [LeadFactory(tenant=tenant) for _ in range(50)]
    now = timezone.now()
    Signal.objects.unscoped().bulk_create(
        Signal(tenant=tenant, lead=leads[i % 50], type="email_open", occurred_at=now - timedelta(minutes=i))
        for i in range(1000)
    )
    ids = list(Signal.objects.unscoped().values_list("id", flat=True))
    # 8 for processing + 6 for re-scoring the 50 leads (agent switch, lock, model, rules, bands,
    # the one scoring statement): a constant, whatever the batch size.
    with django_assert_max_num_queries(14):
        result = signals_process(tenant=tenant, signal_ids=ids)
    assert len(result.signal_ids) == 1000 and len(result.lead_ids) == 50
    assert not Signal.objects.unscoped().filter(processed_at__isnull=True).exists()
    assert Lead.objects.unscoped().filter(last_activity_at__isnull=True).count() == 0


def test_processing_twice_changes_nothing_the_second_time(tenant):
    lead = LeadFactory(tenant=tenant)
    signal = Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="demo_request",
                                              occurred_at=timezone.now() - timedelta(hours=1))
    assert signals_process_task.apply(kwargs={"tenant_id": tenant.id, "signal_ids": [signal.id]}).get() == 1
    signal.refresh_from_db()
    lead.refresh_from_db()
    state = (signal.processed_at, lead.last_activity_at, AuditEvent.objects.unscoped().count())
    assert signals_process_task.apply(kwargs={"tenant_id": tenant.id, "signal_ids": [signal.id]}).get() == 0
    signal.refresh_from_db()
    lead.refresh_from_db()
    assert (signal.processed_at, lead.last_activity_at, AuditEvent.objects.unscoped().count()) == state


def test_an_older_signal_never_moves_last_activity_back(tenant):
    recent = timezone.now() - timedelta(minutes=1)
    lead = LeadFactory(tenant=tenant, last_activity_at=recent)
    old = Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="email_open",
                                           occurred_at=timezone.now() - timedelta(days=30))
    signals_process(tenant=tenant, signal_ids=[old.id])
    lead.refresh_from_db()
    assert lead.last_activity_at == recent
    event = AuditEvent.objects.unscoped().get(action="lead.signals_processed")
    assert event.changes == {} and event.metadata["signal_ids"] == [old.id]


def test_processing_ignores_other_tenants_signals(tenant, other_tenant):
    foreign_lead = LeadFactory(tenant=other_tenant)
    foreign = Signal.objects.unscoped().create(tenant=other_tenant, lead=foreign_lead, type="email_open",
                                               occurred_at=timezone.now())
    assert signals_process(tenant=tenant, signal_ids=[foreign.id]).signal_ids == []
    foreign.refresh_from_db()
    assert foreign.processed_at is None


def test_sweep_recovers_lost_processing_and_attaches_pending_signals(tenant, django_capture_on_commit_callbacks):
    lead = LeadFactory(tenant=tenant, email="ada@acme.example")
    long_ago = timezone.now() - timedelta(minutes=10)
    lost = Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="email_click",
                                            occurred_at=long_ago, received_at=long_ago)
    fresh = Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="email_click", occurred_at=timezone.now())
    # Stored while its lead was being created, so capture's attach did not see it.
    orphan = Signal.objects.unscoped().create(tenant=tenant, email="ada@acme.example", type="demo_request",
                                              occurred_at=long_ago, received_at=long_ago)
    stranger = Signal.objects.unscoped().create(tenant=tenant, email="nobody@acme.example", type="email_open",
                                                occurred_at=long_ago, received_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        signals_sweep_task.apply().get()
    for signal in (lost, fresh, orphan, stranger):
        signal.refresh_from_db()
    assert lost.processed_at is not None and orphan.lead_id == lead.id and orphan.processed_at is not None
    assert fresh.processed_at is None  # its own task is still due; the sweep leaves it alone
    assert stranger.lead_id is None and stranger.processed_at is None
    assert AuditEvent.objects.unscoped().filter(action="lead.signals_attached", object_id=str(lead.id)).exists()


def test_beat_runs_the_sweep_every_minute():
    entry = celery_app.conf.beat_schedule["leads.signals-sweep"]
    assert entry["task"] == signals_sweep_task.name == "leads.tasks.signals_sweep_task"
    assert entry["schedule"] == 60.0


def test_response_is_json_with_the_documented_shape(tenant, api_client):
    response = api_client.post(URL, json.dumps(a_signal(email="a@acme.example")), content_type="application/json")
    assert response.status_code == 202 and response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"results", "accepted", "pending", "duplicates", "errors"}
