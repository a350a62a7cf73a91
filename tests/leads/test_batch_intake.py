"""POST /api/v1/leads/batch/ and `leads_capture_batch`: a result per lead (created, merged, error), the web intake's
dedup, consent and attribution, one transaction, idempotency, API-key scopes and tenancy."""
from __future__ import annotations

import contextlib
import json

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiScope
from leads.events import lead_captured
from leads.models import IdempotencyRecord, Lead, Touch, TouchKind
from leads.services.capture_batch import leads_capture_batch
from tests.support.factories import LeadFactory, MembershipFactory, api_key_for
from tests.support.intake import post_json, row_counts

pytestmark = pytest.mark.django_db
URL = "/api/v1/leads/batch/"


def key_client(tenant, scopes=None) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client, body, **headers):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **headers)


@contextlib.contextmanager
def recorded(event):
    seen = []

    def record(sender, **kwargs):
        seen.append(kwargs)

    event.connect(record, dispatch_uid="test.batch.recorded")
    try:
        yield seen
    finally:
        event.disconnect(dispatch_uid="test.batch.recorded")


def leads_of(tenant):
    return Lead.objects.unscoped().filter(tenant=tenant)


# --- per-item results -------------------------------------------------------------------------------------------


def test_each_lead_is_answered_created_merged_or_error_in_a_207(tenant, api_client):
    existing = LeadFactory(tenant=tenant, email="known@acme.example", job_title="")
    response = post(api_client, [
        {"email": "Ada@Analytical.example", "first_name": "Ada", "company": "Analytical Engines"},
        {"email": "KNOWN@acme.example", "job_title": "CTO"},
        {"email": "not an email", "first_name": "Nobody"},
        {"first_name": "No contact"},
        "not an object",
    ])
    assert response.status_code == 207, response.content
    body = response.json()
    assert (body["created"], body["merged"], body["errors"]) == (1, 1, 3)
    created, merged, bad_email, no_contact, not_object = body["results"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert (created["status"], created["result"]) == (201, "created") and "errors" not in created
    lead = leads_of(tenant).get(pk=created["id"])
    assert (lead.email, lead.first_name, lead.account.domain) == ("ada@analytical.example", "Ada", "analytical.example")
    assert merged == {"index": 1, "status": 200, "result": "merged", "id": str(existing.pk)}
    existing.refresh_from_db()
    assert existing.job_title == "CTO"  # a blank filled, as the web intake does
    assert bad_email == {"index": 2, "status": 400, "result": "error",
                         "errors": {"email": ["Enter a valid email address."]}}
    assert set(no_contact["errors"]) == {"email", "phone"} and "id" not in no_contact
    assert not_object["status"] == 400 and "detail" in not_object["errors"]
    assert not leads_of(tenant).filter(first_name__in=["Nobody", "No contact"]).exists()


def test_a_batch_where_every_lead_is_refused_is_still_a_207_and_writes_nothing(tenant, api_client):
    before = row_counts()
    response = post(api_client, [{"email": "nope"}, {"company": "No contact"}, [1, 2]])
    assert response.status_code == 207
    body = response.json()
    assert (body["created"], body["merged"], body["errors"]) == (0, 0, 3)
    assert all(r["status"] == 400 and r["result"] == "error" and r["errors"] for r in body["results"])
    assert row_counts() == before


def test_field_errors_are_keyed_by_the_name_the_lead_was_sent_with(api_client):
    response = post(api_client, [{"EmailAddress": "broken@", "company_size": "lots", "note\x00": "x"}])
    (result,) = response.json()["results"]
    # NUL in a key: refused first, and named by its escape (the answer is kept in jsonb for replays)
    assert result["result"] == "error" and set(result["errors"]) == {"note\\u0000"}
    replayed = post(api_client, [{"bad\x00key": "x", "email": "a@b.example"}], HTTP_IDEMPOTENCY_KEY="nul")
    again = post(api_client, [{"bad\x00key": "x", "email": "a@b.example"}], HTTP_IDEMPOTENCY_KEY="nul")
    assert again["Idempotent-Replayed"] == "true" and again.json() == replayed.json()
    response = post(api_client, [{"EmailAddress": "broken@", "company_size": "lots"}])
    (result,) = response.json()["results"]
    assert set(result["errors"]) == {"EmailAddress", "company_size"}


# --- the web intake's normalisation, dedup, consent and attribution ------------------------------------------


def test_leads_are_normalised_with_consent_and_attribution_as_the_web_intake_does(tenant, api_client):
    response = post(api_client, {"source": "linkedin_ads", "leads": [{
        "Email": " Grace@Navy.EXAMPLE ", "name": "Grace Brewster Hopper", "phone": "(202) 555-0147", "country": "USA",
        "employees": "51-200", "utm_source": "linkedin", "utm_medium": "paid_social", "utm_campaign": "q3-demo",
        "utm_term": "cobol", "utm_content": "carousel", "campaign_name": "Q3 demo", "opt_in": "yes",
        "page_url": "https://acme.example/demo", "favourite_ship": "USS Hopper",
    }]})
    assert response.status_code == 207, response.content
    lead = leads_of(tenant).get(pk=response.json()["results"][0]["id"])
    assert (lead.email, lead.first_name, lead.last_name) == ("grace@navy.example", "Grace", "Brewster Hopper")
    assert (lead.phone, lead.country, lead.company_size) == ("+12025550147", "US", 51)
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_term, lead.utm_content, lead.campaign) == (
        "linkedin", "paid_social", "q3-demo", "cobol", "carousel", "Q3 demo")
    assert lead.source == "linkedin_ads" and lead.form is None
    assert lead.marketing_consent and lead.consent_at is not None
    assert lead.consent_source == "linkedin_ads (https://acme.example/demo)"
    assert lead.attributes == {"favourite_ship": "USS Hopper"}
    touch = Touch.objects.unscoped().get(lead=lead)
    assert (touch.kind, touch.source, touch.form) == (TouchKind.CREATED, "linkedin_ads", None)
    assert touch.payload["Email"] == " Grace@Navy.EXAMPLE "


def test_a_lead_s_own_source_wins_over_the_batch_s_and_api_is_the_default(tenant, api_client):
    response = post(api_client, {"source": "facebook_ads", "leads": [
        {"email": "own@x.example", "lead_source": "event"}, {"email": "batch@x.example", "source": ""}]})
    sources = [leads_of(tenant).get(pk=r["id"]).source for r in response.json()["results"]]
    assert sources == ["event", "facebook_ads"]
    response = post(api_client, [{"email": "plain@x.example", "consent": True}])
    lead = leads_of(tenant).get(pk=response.json()["results"][0]["id"])
    assert (lead.source, lead.consent_source) == ("api", "api")


def test_a_second_lead_with_the_first_one_s_email_merges_into_it(tenant, api_client):
    response = post(api_client, [
        {"email": "twice@acme.example", "first_name": "Ann"},
        {"email": "Twice@ACME.example", "job_title": "CFO", "first_name": "Anna"},
    ])
    first, second = response.json()["results"]
    assert (first["result"], second["result"]) == ("created", "merged") and first["id"] == second["id"]
    lead = leads_of(tenant).get(pk=first["id"])
    assert (lead.first_name, lead.job_title) == ("Ann", "CFO")  # blanks filled, nothing overwritten
    assert list(Touch.objects.unscoped().filter(lead=lead).order_by("pk").values_list("kind", flat=True)) == [
        TouchKind.CREATED, TouchKind.DUPLICATE]


def test_leads_without_email_are_matched_by_phone_within_the_batch_and_against_existing_ones(tenant, api_client):
    existing = LeadFactory(tenant=tenant, email="", phone="+14155550123")
    response = post(api_client, [
        {"phone": "415.555.0123", "company": "Known by phone"},
        {"phone": "+1 (212) 555-0100", "first_name": "New"},
        {"phone": "212-555-0100", "last_name": "Again"},
    ])
    known, new, again = response.json()["results"]
    assert (known["result"], known["id"]) == ("merged", str(existing.pk))
    assert (new["result"], again["result"]) == ("created", "merged") and again["id"] == new["id"]
    lead = leads_of(tenant).get(pk=new["id"])
    assert (lead.phone, lead.first_name, lead.last_name) == ("+12125550100", "New", "Again")


def test_every_created_lead_sends_lead_captured_in_the_batch_s_transaction(tenant, api_client):
    LeadFactory(tenant=tenant, email="known@acme.example")
    with recorded(lead_captured) as seen:
        response = post(api_client, [{"email": f"new{i}@acme.example"} for i in range(3)]
                        + [{"email": "known@acme.example", "job_title": "CEO"}, {"email": "bad"}])
    body = response.json()
    created_ids = {r["id"] for r in body["results"] if r["result"] == "created"}
    assert len(created_ids) == 3
    assert {str(e["lead"].pk) for e in seen if e["created"]} == created_ids
    assert [e["created"] for e in seen] == [True, True, True, False]
    assert all(e["tenant"] == tenant for e in seen)


def test_the_pipeline_runs_after_the_one_commit_for_each_created_lead(tenant, api_client,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(api_client, [{"email": f"p{i}@acme.example"} for i in range(3)] + [{"email": "bad"}])
    assert response.json()["created"] == 3
    assert callbacks  # enqueued on commit, nothing while the batch's transaction is open
    assert not leads_of(tenant).filter(owner__isnull=False).exists()  # nobody routed inside the transaction


# --- one transaction --------------------------------------------------------------------------------------------


def test_a_database_error_mid_batch_rolls_back_every_lead_of_it(tenant):
    """A refused lead is that lead's error; a database error is not a refusal: nothing of the batch stays."""
    calls = []

    def fail_on_third(sender, **kwargs):
        calls.append(kwargs["lead"].pk)
        if len(calls) == 3:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")  # a database error inside the third lead's capture

    before = row_counts()
    lead_captured.connect(fail_on_third, dispatch_uid="test.batch.fail")
    try:
        with tenant_scope(tenant), pytest.raises(DataError):
            leads_capture_batch(tenant=tenant, items=[{"email": f"r{i}@acme.example"} for i in range(5)],
                                actor=Actor.agent("test"))
    finally:
        lead_captured.disconnect(dispatch_uid="test.batch.fail")
    assert len(calls) == 3
    assert row_counts() == before


def test_queries_are_bounded_per_lead(tenant, api_key):
    key, _raw = api_key
    actor = Actor.for_api_key(key)

    def queries(items) -> int:
        with tenant_scope(tenant), CaptureQueriesContext(connection) as ctx:
            body = leads_capture_batch(tenant=tenant, items=items, actor=actor).body
        assert body["errors"] == 0
        return len(ctx.captured_queries)

    queries([{"email": "warm@up.example"}])  # first-use lookups (content types …) out of the way
    ten = queries([{"email": f"a{i}@ten.example", "company": "Ten"} for i in range(10)])
    twenty = queries([{"email": f"b{i}@twenty.example", "company": "Twenty"} for i in range(20)])
    per_lead = (twenty - ten) / 10
    assert per_lead <= 10, (ten, twenty)
    LeadFactory.create_batch(20, tenant=tenant)
    merges = queries([{"email": lead.email, "job_title": "CTO"} for lead in leads_of(tenant).order_by("email")[:20]])
    assert merges <= 10 * 20 + 10, merges


# --- size limits ------------------------------------------------------------------------------------------------


def test_a_thousand_leads_are_accepted_and_a_thousand_and_one_refused(tenant, api_client):
    response = post(api_client, [{"email": f"lead{i}@thousand.example"} for i in range(1000)])
    assert response.status_code == 207, response.content[:300]
    assert response.json()["created"] == 1000 and leads_of(tenant).count() == 1000
    response = post(api_client, {"leads": [{"email": f"more{i}@thousand.example"} for i in range(1001)]})
    assert response.status_code == 400
    assert response.json() == {"errors": {"leads": ["At most 1000 leads per request (1001 sent)."]}}
    assert leads_of(tenant).count() == 1000


@pytest.mark.parametrize("body, field", [
    ([], "detail"), ({"leads": []}, "leads"), ({"email": "one@lead.example"}, "email"), ({"source": "x"}, "leads"),
    ({"leads": {"email": "a@b.example"}}, "leads"), ("leads", "detail"), (5, "detail"), (None, "detail"),
    ({"leads": [{"email": "a@b.example"}], "source": 5}, "source"),
    ({"leads": [{"email": "a@b.example"}], "source": "x" * 65}, "source"),
    ({"leads": [{"email": "a@b.example"}], "source": "a\x00b"}, "source"),
])
def test_a_body_that_is_not_a_batch_is_a_400(tenant, api_client, body, field):
    before = row_counts()
    response = post(api_client, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert row_counts() == before


def test_an_empty_or_broken_body_is_a_400_and_another_content_type_a_415(api_client):
    assert api_client.post(URL, data=b"", content_type="application/json").status_code == 400
    assert api_client.post(URL, data=b"[{", content_type="application/json").status_code == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    assert api_client.post(URL, data=deep, content_type="application/json").status_code == 400
    assert api_client.post(URL, data=b"email=a@b.example", content_type="application/x-www-form-urlencoded"
                           ).status_code == 415


def test_a_body_over_the_byte_limit_is_a_413(tenant, api_client, settings):
    settings.INTAKE_BATCH_MAX_BODY_BYTES = 1000
    response = post(api_client, [{"email": f"big{i}@acme.example", "company": "x" * 50} for i in range(20)])
    assert response.status_code == 413
    assert "detail" in response.json()["errors"]
    assert not leads_of(tenant).exists()


# --- idempotency ------------------------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replay_the_first_answer_and_capture_nothing(tenant, api_client):
    batch = [{"email": "once@acme.example"}, {"email": "bad"}]
    first = post(api_client, batch, HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == 207 and "Idempotent-Replayed" not in first
    before = row_counts()
    again = post(api_client, {"leads": batch}, HTTP_IDEMPOTENCY_KEY="batch-1")  # the same batch, as an object
    assert again.status_code == 207 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert row_counts() == before
    assert Touch.objects.unscoped().filter(lead__email="once@acme.example").count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_422(tenant, api_client):
    post(api_client, [{"email": "first@acme.example"}], HTTP_IDEMPOTENCY_KEY="batch-2")
    before = row_counts()
    response = post(api_client, [{"email": "second@acme.example"}], HTTP_IDEMPOTENCY_KEY="batch-2")
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["errors"]
    assert row_counts() == before
    other_source = post(api_client, {"leads": [{"email": "first@acme.example"}], "source": "event"},
                        HTTP_IDEMPOTENCY_KEY="batch-2")
    assert other_source.status_code == 422


def test_an_invalid_idempotency_key_is_a_400(api_client):
    response = post(api_client, [{"email": "a@acme.example"}], HTTP_IDEMPOTENCY_KEY="x" * 201)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]


def test_a_batch_key_never_meets_a_form_key_or_another_api_key_s(tenant, api_client, lead_form, client):
    """Idempotency keys are scoped to what sent them: one form, or one API key."""
    form_answer = post_json(client, {"email": "form@acme.example"}, form=lead_form, HTTP_IDEMPOTENCY_KEY="shared")
    assert form_answer.status_code == 201
    batch = post(api_client, [{"email": "batch@acme.example"}], HTTP_IDEMPOTENCY_KEY="shared")
    assert batch.status_code == 207 and "Idempotent-Replayed" not in batch
    other_key = post(key_client(tenant), [{"email": "other@acme.example"}], HTTP_IDEMPOTENCY_KEY="shared")
    assert other_key.status_code == 207 and "Idempotent-Replayed" not in other_key
    records = IdempotencyRecord.objects.unscoped().filter(tenant=tenant, key="shared")
    assert records.count() == 3
    assert records.filter(form=lead_form, api_key=None).count() == 1
    assert records.filter(form=None, api_key__isnull=False).count() == 2


def test_a_batch_key_is_forgotten_after_the_replay_window(tenant, api_client):
    from datetime import timedelta

    from django.utils import timezone

    post(api_client, [{"email": "old@acme.example"}], HTTP_IDEMPOTENCY_KEY="batch-3")
    IdempotencyRecord.objects.unscoped().filter(key="batch-3").update(created_at=timezone.now() - timedelta(hours=25))
    later = post(api_client, [{"email": "new@acme.example"}], HTTP_IDEMPOTENCY_KEY="batch-3")
    assert later.status_code == 207 and "Idempotent-Replayed" not in later
    assert later.json()["created"] == 1
    assert IdempotencyRecord.objects.unscoped().filter(key="batch-3").count() == 1


# --- who may send a batch ---------------------------------------------------------------------------------------


def test_no_key_is_a_401_and_a_wrong_key_too(tenant):
    assert post(APIClient(), [{"email": "a@acme.example"}]).status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer lm_nope_nope")
    assert post(wrong, [{"email": "a@acme.example"}]).status_code == 401
    assert not leads_of(tenant).exists()


@pytest.mark.parametrize("scopes", [[ApiScope.LEADS_READ], [ApiScope.SIGNALS_WRITE], []])
def test_a_key_without_leads_write_is_a_403(tenant, scopes):
    response = post(key_client(tenant, scopes=[str(s) for s in scopes]), [{"email": "a@acme.example"}])
    assert response.status_code == 403
    assert "leads:write" in response.json()["errors"]["detail"][0]
    assert not leads_of(tenant).exists()


def test_a_signed_in_member_cannot_send_a_batch(tenant):
    client = APIClient()
    client.force_login(MembershipFactory(tenant=tenant).user)
    assert post(client, [{"email": "a@acme.example"}]).status_code in (401, 403)
    assert not leads_of(tenant).exists()


def test_a_key_merges_only_into_its_own_tenant_s_leads(tenant, other_tenant, api_client):
    theirs = LeadFactory(tenant=other_tenant, email="shared@person.example", job_title="")
    their_rows = (leads_of(other_tenant).count(), Touch.objects.unscoped().filter(tenant=other_tenant).count(),
                  AuditEvent.objects.unscoped().filter(tenant=other_tenant).count())
    response = post(api_client, [{"email": "shared@person.example", "job_title": "CTO"}])
    (result,) = response.json()["results"]
    assert result["result"] == "created" and result["id"] != str(theirs.pk)
    assert leads_of(tenant).get(pk=result["id"]).email == "shared@person.example"
    theirs.refresh_from_db()
    assert theirs.job_title == ""
    assert (leads_of(other_tenant).count(), Touch.objects.unscoped().filter(tenant=other_tenant).count(),
            AuditEvent.objects.unscoped().filter(tenant=other_tenant).count()) == their_rows
    their_list = key_client(other_tenant).get("/api/v1/leads/").json()
    assert [row["id"] for row in their_list["results"]] == [str(theirs.pk)]


def test_a_batch_is_audited_as_its_api_key(tenant, api_key, api_client):
    response = post(api_client, [{"email": "audited@acme.example"}])
    lead_id = response.json()["results"][0]["id"]
    event = AuditEvent.objects.unscoped().get(action="lead.created", object_id=lead_id)
    assert event.actor_kind == "api_key" and event.actor_api_key_id == api_key[0].id


def test_batch_resolves_to_the_batch_view_not_a_lead(api_client):
    from django.urls import resolve

    assert resolve(URL).url_name == "lead-batch-intake"
    assert api_client.get(URL).status_code == 405  # the URL is the batch's, which only takes POST


# --- hostile values ---------------------------------------------------------------------------------------------

HOSTILE_VALUES = ["x" * 20_000, "a\x00b", 10**30, -(10**30), -1, 1.5, True, None, [], {}, "³", {"\x00": 1},
                  "\udfff", [[[[[[[["deep"]]]]]]]]]


@pytest.mark.parametrize("field", ["email", "phone", "first_name", "name", "company", "company_size", "country",
                                   "website", "company_domain", "utm_source", "source", "marketing_consent",
                                   "page_url", "attributes", "custom_field"])
def test_hostile_values_are_that_lead_s_error_never_a_500(tenant, api_client, field):
    items = [{"email": f"h{i}@hostile.example", field: value} if field != "email" else {field: value}
             for i, value in enumerate(HOSTILE_VALUES)]
    text = json.dumps(items)  # ASCII: a lone surrogate is sent as the escape \udfff, as JSON allows
    response = api_client.post(URL, data=text.encode(), content_type="application/json")
    assert response.status_code == 207, response.content[:300]
    results = response.json()["results"]
    assert len(results) == len(HOSTILE_VALUES)
    for result in results:
        assert result["result"] in ("created", "merged") or set(result["errors"]), result


def test_with_redis_down_the_key_s_rate_limit_fails_open_and_the_batch_is_captured(tenant, api_client, settings,
                                                                                   caplog):
    """A Redis restart must not answer an integration's batch with a 500: the key's limit is skipped (logged)
    and the leads, which need only PostgreSQL, are written."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens there
    with caplog.at_level("WARNING", logger="leadmgmt.api"):
        response = api_client.post("/api/v1/leads/batch/", [{"email": "down@batch.example"}], format="json")
    assert response.status_code == 207, response.content
    assert leads_of(tenant).filter(email="down@batch.example").exists()
    assert "Redis unavailable" in caplog.text
