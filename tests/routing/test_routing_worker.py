"""A real Celery worker process routes a lead captured through the intake endpoint (no eager mode)."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import Lead
from routing.defaults import ROUND_ROBIN_RULE
from routing.models import Assignment, SlaClock, Trigger
from routing.tasks import lead_route_task
from tests.support.worker import real_worker, wait_until

OWNER_WITHIN = 10  # seconds from the intake post to an owner, the worker being up


@pytest.fixture
def routing_worker(tmp_path):
    """A real `celery worker` on a queue of its own that every task goes to."""
    with real_worker(tmp_path, name="test-routing") as (_queue, process, log):
        yield process, log


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

    wait_until(lambda: owner_of(lead) is not None, process, log, "the lead getting an owner", OWNER_WITHIN)
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
