"""A real Celery worker process routes a lead captured through the intake endpoint (no eager mode)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from leadmgmt.audit.models import AuditEvent
from leadmgmt.celery import app as celery_app
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import Lead
from routing.defaults import ROUND_ROBIN_RULE
from routing.models import Assignment, SlaClock, Trigger
from routing.tasks import lead_route_task

from ..test_celery_worker import _test_database_url

ROOT = Path(__file__).resolve().parent.parent.parent
READY_TIMEOUT = 60
OWNER_WITHIN = 10  # seconds from the intake post to an owner, the worker being up
# The worker routes every task it sends (scoring's band-change re-route, ...) to the test's own
# queue as well, so nothing is left behind on the shared broker for another worker to pick up.
WORKER_MAIN = ("import sys; from leadmgmt.celery import app; "
               "app.conf.task_routes = {'*': {'queue': sys.argv[1]}}; app.worker_main(sys.argv[2:])")


@pytest.fixture
def routing_worker(tmp_path):
    """`celery worker` on a queue of its own that every task goes to; ready when its log says so."""
    queue = f"test-routing-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "REDIS_URL": settings.REDIS_URL,
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_TASK_ALWAYS_EAGER": "false"}
    log = tmp_path / "worker.log"
    previous_routes, previous_eager = celery_app.conf.task_routes, celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.conf.update(task_routes={"*": {"queue": queue}})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, queue, "worker", "--pool=solo", "-Q", queue, "-n", f"{queue}@%h",
             "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=info"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while " ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not come up (exit {process.poll()}):\n{log.read_text()}")
            time.sleep(0.1)
        yield process, log
    finally:
        celery_app.conf.update(task_routes=previous_routes)
        celery_app.conf.task_always_eager = previous_eager
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        with celery_app.connection_for_write() as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
            # The queue's exchange bindings (Redis sets named after the queue) too: a fresh
            # channel does not know them, so queue_delete leaves them behind.
            channel.client.delete(channel.keyprefix_queue % queue, channel.keyprefix_binding_permanent % queue)


def wait_until(condition, process, log, what: str, timeout: float = OWNER_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}) before {what}:\n{log.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout}s; worker log:\n{log.read_text()}")


def capture(client: Client, form_key: str, email: str) -> Lead:
    response = client.post("/api/v1/intake/", data=json.dumps({"email": email, "first_name": "Ada", "company": "Acme"}),
                           content_type="application/json", HTTP_X_FORM_KEY=form_key)
    assert response.status_code == 201, response.content
    return Lead.objects.unscoped().get(pk=response.json()["id"])


def owner_of(lead: Lead):
    return Lead.objects.unscoped().filter(pk=lead.pk).values_list("owner_id", flat=True).get()


def routing_state(lead: Lead) -> tuple:
    """Everything a routing run writes for the lead: owner, team, assignment history, SLA clocks, audit."""
    row = Lead.objects.unscoped().filter(pk=lead.pk).values_list("owner_id", "team_id", "assigned_at",
                                                                  "unassigned_reason", "sla_due_at").get()
    assignments = list(Assignment.objects.unscoped().filter(lead_id=lead.pk).order_by("id")
                       .values_list("id", "owner_id", "trigger", "at"))
    clocks = list(SlaClock.objects.unscoped().filter(lead_id=lead.pk).order_by("id")
                  .values_list("id", "owner_id", "due_at", "stopped_at"))
    events = AuditEvent.objects.unscoped().filter(object_id=str(lead.pk)).count()
    return row, assignments, clocks, events


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_gives_a_lead_posted_to_intake_an_sdr_within_seconds(routing_worker):
    process, log = routing_worker
    provisioned = tenant_create(slug="acme-routing", name="Acme Routing", admin_email="admin@acme-routing.example")
    tenant = provisioned.tenant
    sdrs = {membership_upsert(tenant=tenant, email=f"sdr{n}@acme-routing.example", role=Role.SDR,
                              team_name=DEFAULT_TEAM)[0].user_id for n in range(1, 5)}
    client = Client()

    lead = capture(client, provisioned.form_key, "ada@acme.example")

    wait_until(lambda: owner_of(lead) is not None, process, log, "the lead getting an owner")
    lead.refresh_from_db()
    assert lead.owner_id in sdrs and lead.team.name == DEFAULT_TEAM and lead.assigned_at is not None
    capture_run = Assignment.objects.unscoped().get(lead=lead, trigger=Trigger.CAPTURE)
    assert (capture_run.owner_id, capture_run.rule_name, capture_run.actor_name) == (
        lead.owner_id, ROUND_ROBIN_RULE, "Routing Agent")
    assert SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True, owner_id=lead.owner_id).exists()

    # A marker lead captured after the first one (its score task, its band change and its capture
    # routing come after those of the first lead on the one solo worker): once it has an owner,
    # everything queued for the first lead has run.
    first_marker = capture(client, provisioned.form_key, "grace@acme.example")
    wait_until(lambda: owner_of(first_marker) is not None, process, log, "the marker lead getting an owner")
    state = routing_state(lead)

    # Running the task again (a redelivery, the sweep) changes nothing: on the real worker, queued
    # before a second marker whose owner proves it ran ...
    lead_route_task.delay(tenant_id=tenant.pk, lead_id=str(lead.pk), trigger=Trigger.CAPTURE.value)
    marker = capture(client, provisioned.form_key, "alan@acme.example")
    wait_until(lambda: owner_of(marker) is not None, process, log, "the repeated task and the next lead")
    assert routing_state(lead) == state
    # Round-robin: three leads, three different SDRs.
    owners = [owner_of(x) for x in (lead, first_marker, marker)]
    assert len(set(owners)) == 3 and set(owners) <= sdrs
    # ... and in-process, for a capture and a band change: nothing to do, nothing written.
    for trigger in (Trigger.CAPTURE, Trigger.SCORE_BAND):
        assert lead_route_task.apply(kwargs={"tenant_id": tenant.pk, "lead_id": str(lead.pk),
                                             "trigger": trigger.value}).get() is None
    assert routing_state(lead) == state
    assert "ERROR" not in log.read_text(errors="replace")
