"""Concurrent submissions against real PostgreSQL: one email → one Lead, one new domain → one Account,
one Idempotency-Key → one write, one phone → one Lead."""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from leads.models import Account, IdempotencyRecord, Lead, Touch, TouchKind
from tests.support.intake import post_json

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def _post_concurrently(form, bodies, **headers):
    """POST each body from its own thread (own DB connection), all released at once."""
    barrier = threading.Barrier(len(bodies))
    responses, failures = [None] * len(bodies), []

    def run(index, body):
        try:
            client = Client()
            barrier.wait(timeout=10)
            responses[index] = post_json(client, body, form=form, **headers)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    return responses


def test_concurrent_posts_of_one_email_make_one_lead_and_a_touch_each(lead_form):
    responses = _post_concurrently(lead_form, [{"email": "race@acme-race.example", "first_name": f"N{i}"} for i in range(THREADS)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201], [r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    lead = Lead.objects.unscoped().get()
    assert lead.email == "race@acme-race.example"
    touches = Touch.objects.unscoped().filter(lead=lead)
    assert touches.count() == THREADS
    assert touches.filter(kind=TouchKind.CREATED).count() == 1
    assert Account.objects.unscoped().count() == 1


def test_concurrent_first_leads_of_one_new_domain_make_one_account(lead_form):
    responses = _post_concurrently(lead_form, [{"email": f"p{i}@newco-race.example", "company": "NewCo"} for i in range(THREADS)])
    assert [r.status_code for r in responses] == [201] * THREADS
    account = Account.objects.unscoped().get()
    assert account.domain == "newco-race.example"
    assert Lead.objects.unscoped().filter(account=account).count() == THREADS


def test_concurrent_retries_with_one_idempotency_key_write_once(lead_form):
    body = {"email": "retry@idem-race.example"}
    responses = _post_concurrently(lead_form, [body] * THREADS, HTTP_IDEMPOTENCY_KEY="race-key")
    assert [r.status_code for r in responses] == [201] * THREADS, [r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == THREADS - 1
    assert (Lead.objects.unscoped().count(), Touch.objects.unscoped().count()) == (1, 1)
    assert IdempotencyRecord.objects.unscoped().count() == 1


def test_concurrent_phone_only_posts_of_one_number_make_one_lead(lead_form):
    responses = _post_concurrently(lead_form, [{"phone": "+1 415 555 0190", "job_title": f"T{i}"} for i in range(THREADS)])
    assert sorted(r.status_code for r in responses) == [200] * (THREADS - 1) + [201]
    lead = Lead.objects.unscoped().get()
    assert Touch.objects.unscoped().filter(lead=lead).count() == THREADS
