"""What one web capture costs, through the endpoint against real PostgreSQL and Redis: the statements of a new
lead, a merge and an idempotent capture, and the Redis round trips of both rate limits. Each is an upper bound
equal to what the capture needs today, so a change that adds a round trip to the hot path fails here (the
statements are listed in leads/services/capture.py)."""
from __future__ import annotations

import pytest
import redis
from celery.app.task import Task
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from leads.models import Lead
from tests.support.intake import post_json

# Real transactions: BEGIN and COMMIT are counted as in production, and no test transaction turns the
# capture's atomic blocks into savepoints.
pytestmark = pytest.mark.django_db(transaction=True)

# A new lead is one statement in autocommit: the Account upsert, the Lead insert, the signals that came before it,
# the Touch and the audit rows (leads/services/capture.py `_lead_create_at_once`).
NEW_LEAD_STATEMENTS = 1
# ... the statement finds the email taken (it wrote only the account's part): BEGIN, the lead locked, its blanks
# filled, the Touch with the signals and the audit row, COMMIT.
MERGE_STATEMENTS = 6
# the key's record looked up before; BEGIN, the new lead's statement, the record written in its transaction, COMMIT
IDEMPOTENT_STATEMENTS = 5


@pytest.fixture
def enqueued(monkeypatch):
    """The tasks a capture enqueues, recorded instead of run: what the worker does is not the request's cost."""
    names: list[str] = []
    monkeypatch.setattr(Task, "delay", lambda self, *args, **kwargs: names.append(self.name))
    return names


@pytest.fixture
def client(lead_form):
    client = Client()
    # The first submission reads the form into the process's form cache (and loads Django's lazy state).
    assert post_json(client, {"email": "warm@up.example"}, form=lead_form).status_code == 201
    return client


def _twin(body):
    """A body of the same shape with another person at another company: its statements are the same."""
    local, domain = body["email"].split("@")
    twin = {**body, "email": f"{local}@twin-{domain}"}
    if "phone" in body:
        twin["phone"] = body["phone"][:-1] + str((int(body["phone"][-1]) + 1) % 10)
    return twin


def _statements(client, body, form, *, warm: bool = True, **headers):
    """The statements of posting `body`, once a body of its shape has been posted on this connection (the
    capture's statement is prepared once per connection: leadmgmt/db/prepared.py)."""
    if warm:
        post_json(client, _twin(body), form=form)
    with CaptureQueriesContext(connection) as queries:
        response = post_json(client, body, form=form, **headers)
    return response, [query["sql"] for query in queries.captured_queries]


def test_a_new_lead_with_a_new_account_costs_one_statement(client, lead_form, enqueued):
    enqueued.clear()
    response, statements = _statements(
        client, {"email": "ada@analytical.example", "first_name": "Ada", "company": "Analytical Engines",
                 "phone": "+1 415 555 0101", "utm_source": "ads", "consent": "yes"}, lead_form)
    assert response.status_code == 201, response.content
    assert len(statements) <= NEW_LEAD_STATEMENTS, "\n".join(statements)
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    assert enqueued == ["leads.tasks.lead_captured_task"]  # the pipeline is still enqueued, after commit
    assert Lead.objects.unscoped().get(pk=response.json()["id"]).account.domain == "analytical.example"


def test_a_merge_costs_six_statements(client, lead_form, enqueued):
    post_json(client, {"email": "grace@navy.example", "company": "Navy"}, form=lead_form)
    response, statements = _statements(
        client, {"email": "grace@navy.example", "job_title": "Rear Admiral", "country": "USA"}, lead_form)
    assert response.status_code == 200, response.content
    assert len(statements) <= MERGE_STATEMENTS, "\n".join(statements)
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    assert Lead.objects.unscoped().get(pk=response.json()["id"]).job_title == "Rear Admiral"


def test_an_idempotent_capture_costs_five_statements_and_its_replay_one(client, lead_form, enqueued):
    body = {"email": "alan@bletchley.example", "company": "Bletchley"}
    response, statements = _statements(client, body, lead_form, HTTP_IDEMPOTENCY_KEY="cost-1")
    assert response.status_code == 201, response.content
    assert len(statements) <= IDEMPOTENT_STATEMENTS, "\n".join(statements)
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    replay, statements = _statements(client, body, lead_form, warm=False, HTTP_IDEMPOTENCY_KEY="cost-1")
    assert replay.json() == response.json() and replay["Idempotent-Replayed"] == "true"
    assert len(statements) == 1


def test_both_rate_limits_cost_one_redis_round_trip(client, lead_form, enqueued, monkeypatch):
    commands: list[str] = []
    send = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(str(args[0]))
        return send(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    response = post_json(client, {"email": "one@round-trip.example"}, form=lead_form)
    assert response.status_code == 201
    # the two limits in one EVALSHA, and the pipeline's "task queued" flag (SET NX) instead of a publish
    assert commands == ["EVALSHA", "SET"]
